"""Training data at real-data shapes: frames of different sizes in one batch, images as
one-frame videos, video files through OpenCV, the official flip and multi-scale
augmentations, unreadable frames named or skipped, bounded frame memory, mixed datasets."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.errors import InputError
from reference_model.__main__ import main
from reference_model.data import (ClipDataset, MixedClips, VideoSource, collate, images_as_videos,
                                  load_source)


def _dataset(source, **kw):
    ids = [c["id"] for c in source.gt["categories"]]
    return ClipDataset(source=source, clip_len=2, category_ids=ids, tokenize=lambda s: [1],
                       **{"short_edge": 32, **kw})


def _one_object(h: int, w: int, n_frames: int, box=(4, 6, 10, 8)) -> dict:
    x, y, bw, bh = box
    return {
        "videos": [{"id": 1, "height": h, "width": w, "length": n_frames}],
        "images": [{"id": 10 + k, "video_id": 1, "frame_index": k, "file_name": f"v/{k}.png",
                    "height": h, "width": w} for k in range(n_frames)],
        "annotations": [{"id": 100 + k, "image_id": 10 + k, "video_id": 1, "track_id": 1,
                         "category_id": 1, "bbox": list(box), "caption": "a box"}
                        for k in range(n_frames)],
        "categories": [{"id": 1, "name": "box"}]}


def _frames(h, w, n):
    frames = np.zeros((n, h, w, 3), np.uint8)
    for k in range(n):
        frames[k, :, :, 0] = 40 * (k + 1)  # a different red per frame
    return frames


def test_collate_pads_clips_of_different_sizes_and_keeps_boxes_in_pixels():
    small = VideoSource(name="a", gt=_one_object(32, 48, 3), render=lambda v: _frames(32, 48, 3))
    large = VideoSource(name="b", gt=_one_object(40, 40, 3, box=(8, 8, 16, 4)),
                        render=lambda v: _frames(40, 40, 3))
    a, b = _dataset(small)[0], _dataset(large)[0]
    assert a[0].shape == (2, 3, 32, 64) and b[0].shape == (2, 3, 32, 32)  # 32x48 pads to 32x64
    clips, targets, skipped = collate([a, b, None])
    assert clips.shape == (2, 2, 3, 32, 64) and skipped == 1
    # The second clip's pixels sit at the top left; the rest is padding.
    assert torch.equal(clips[1, :, :, :, :32], b[0]) and float(clips[1, :, :, :, 32:].abs().sum()) == 0
    assert targets[1].pixel_valid.shape == (32, 64)
    assert targets[1].pixel_valid[:, :32].all() and not targets[1].pixel_valid[:, 32:].any()
    assert targets[0].pixel_valid[:, :48].all() and not targets[0].pixel_valid[:, 48:].any()
    # Box (8, 8, 16, 4) at scale 32/40 = 0.8: centre (12.8, 8.0), size 12.8 x 3.2 pixels,
    # as fractions of the 64 x 32 batch frame.
    assert targets[1].boxes[0, 0].tolist() == pytest.approx([12.8 / 64, 8.0 / 32, 12.8 / 64, 3.2 / 32])
    assert targets[1].masks.shape == (1, 2, 32, 64)


def test_images_are_one_frame_videos_repeated_to_the_clip_length(tmp_path):
    gt = {"images": [{"id": 5, "file_name": "a.png", "height": 20, "width": 30}],
          "annotations": [{"id": 7, "image_id": 5, "bbox": [2, 3, 10, 5], "category_id": 1,
                           "caption": "a cat"}],
          "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "JPEGImages").mkdir()
    Image.fromarray(_frames(20, 30, 1)[0]).save(tmp_path / "JPEGImages" / "a.png")
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    source = load_source(tmp_path)
    assert source.videos[5]["length"] == 1
    clip, target = _dataset(source)[0]
    assert clip.shape[0] == 2 and torch.equal(clip[0], clip[1])
    assert target.box_valid.tolist() == [[True, True]] and target.caption_ids == [[1]]
    with pytest.raises(InputError, match=r"record 0, field 'id'"):
        images_as_videos({"images": [{"file_name": "a.png"}]}, source="x.json")


def test_flip_and_short_edge_are_drawn_per_clip_and_repeatable():
    source = VideoSource(name="a", gt=_one_object(32, 48, 3), render=lambda v: _frames(32, 48, 3))
    ds = _dataset(source, augment=True, short_edges=(32, 64))
    plain = _dataset(source)[0]
    flips = [d for d in range(40) if np.random.default_rng(d).random() < 0.5]
    stays = [d for d in range(40) if np.random.default_rng(d).random() >= 0.5]
    draw = next(d for d in flips if np.random.default_rng(d).random() >= 0 and
                (lambda r: (r.random(), r.integers(2))[1])(np.random.default_rng(d)) == 0)
    clip, target = ds[(0, draw)]
    assert clip.shape == plain[0].shape  # short edge 32 drawn
    assert torch.equal(clip[..., :48], plain[0][..., :48].flip(-1))
    # Box x 4, width 10 on a 48-wide frame: mirrored to x 34; centre 39 of 64 padded width.
    assert target.boxes[0, 0, 0].item() == pytest.approx(39 / 64)
    assert torch.equal(target.masks[..., :48], plain[1].masks[..., :48].flip(-1))
    again, _ = ds[(0, draw)]
    assert torch.equal(again, clip)
    unflipped, _ = ds[(0, stays[0])]
    assert not torch.equal(unflipped[..., :48], clip[..., :48])
    sizes = {ds[(0, d)][0].shape[-2] for d in range(12)}
    assert sizes == {32, 64}  # both short edges drawn


def test_video_files_are_read_through_opencv(tmp_path):
    cv2 = pytest.importorskip("cv2")
    (tmp_path / "videos").mkdir()
    frames = _frames(32, 48, 4)
    writer = cv2.VideoWriter(str(tmp_path / "videos" / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"),
                             10, (48, 32))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    gt = _one_object(32, 48, 4)
    gt["videos"][0]["file_name"] = "v.avi"
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    source = load_source(tmp_path)
    got = source.frame_slice(1, [3, 0, 1])
    assert got.shape == (3, 32, 48, 3)
    assert np.abs(got[:, :, :, 0].mean(axis=(1, 2)) - [160, 40, 80]).max() < 6  # JPEG-coded
    gt["images"].append({"id": 99, "video_id": 1, "frame_index": 9, "height": 32, "width": 48})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(InputError, match=r"v\.avi: field 'file_name': cannot read frame 9 of the video \(it has 4 frames\)"):
        load_source(tmp_path).frame_slice(1, [4])
    gt["videos"][0]["file_name"] = "missing.mp4"
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    with pytest.raises(InputError, match=r"missing\.mp4: field 'file_name': cannot open"):
        load_source(tmp_path).frame_slice(1, [0])


def test_an_unreadable_frame_is_named_or_skipped_and_counted(tmp_path):
    (tmp_path / "JPEGImages" / "v").mkdir(parents=True)
    for k, frame in enumerate(_frames(32, 48, 3)):
        Image.fromarray(frame).save(tmp_path / "JPEGImages" / "v" / f"{k}.png")
    (tmp_path / "JPEGImages" / "v" / "1.png").write_bytes(b"not a png")
    (tmp_path / "gt.json").write_text(json.dumps(_one_object(32, 48, 3)))
    source = load_source(tmp_path)
    with pytest.raises(InputError, match=r"1\.png: record 11, field 'file_name': cannot read frame"):
        _dataset(source)[0]
    lenient = _dataset(source, skip_broken=True)
    assert lenient[0] is None and lenient[1] is None  # both windows hold frame 1
    clips, targets, skipped = collate([lenient[0], lenient[1]])
    assert (len(targets), skipped) == (0, 2)


def test_rendered_videos_are_not_all_kept_in_memory():
    rendered = []
    source = VideoSource(name="many", gt=_one_object(8, 8, 2),
                         render=lambda v: rendered.append(v) or _frames(8, 8, 2))
    for v in range(30):
        source.frames(v)
    source.frames(29)  # the most recent ones are kept
    assert len(source._cache) == 8 and rendered == list(range(30))
    source.frames(0)
    assert rendered[-1] == 0  # the oldest was dropped and is rendered again


def test_mixed_datasets_follow_their_ratios_and_reject_bad_ones():
    a = VideoSource(name="a", gt=_one_object(32, 48, 3), render=lambda v: _frames(32, 48, 3))
    b = VideoSource(name="b", gt=_one_object(40, 40, 5), render=lambda v: _frames(40, 40, 5))
    mixed = MixedClips([_dataset(a), _dataset(b)], [1.0, 3.0])
    order = mixed.order(4000, seed=1)
    share = sum(d == 1 for d, _, _ in order) / len(order)
    assert 0.72 < share < 0.78
    assert all(w < len(mixed.datasets[d]) for d, w, _ in order)
    assert order == mixed.order(4000, seed=1) and order != mixed.order(4000, seed=2)
    clip, _ = mixed[order[0]]
    assert clip.shape[0] == 2
    with pytest.raises(InputError, match="one positive sampling ratio per dataset"):
        MixedClips([_dataset(a)], [1.0, 2.0])


def test_training_on_mixed_sizes_and_lengths_with_workers_resumes_exactly(tmp_path, monkeypatch):
    import reference_model.train as train_module

    data = ["synthetic:num_videos=3,num_frames=4,height=48,width=64,max_objects=2,seed=1",
            "synthetic:num_videos=2,num_frames=7,height=64,width=40,max_objects=2,seed=2"]
    args = ["train", "--config", "tiny", "--data", *data, "--ratios", "1", "2", "--batch-size",
            "3", "--augment", "--short-edges", "32", "48", "--workers", "2", "--steps", "4",
            "--checkpoint-every", "2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main([*args, "--out", str(straight)]) == 0
    save = train_module.save_checkpoint

    def save_then_die(path, payload):  # killed right after the step-2 checkpoint is written
        save(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)
    assert main([*args, "--out", str(resumed)]) != 0  # the CLI reports the interruption
    monkeypatch.setattr(train_module, "save_checkpoint", save)
    assert torch.load(resumed / "checkpoint.pt", weights_only=False)["step"] == 2
    assert main([*args, "--out", str(resumed), "--resume"]) == 0
    a = torch.load(straight / "checkpoint.pt", weights_only=False)
    b = torch.load(resumed / "checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_accumulation_logs_and_tensorboard(tmp_path):
    from reference_model.config import get_config
    from reference_model.train import TRAIN_PRESETS, train

    opts = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=3, batch_size=1, accumulate=2,
                               log_every=2, checkpoint_every=10)
    data = "synthetic:num_videos=2,num_frames=4,height=48,width=64,max_objects=2,seed=1"
    train(config=get_config("tiny"), data=data, out=tmp_path, opts=opts, progress=False)
    lines = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 3]  # every 2 steps, and the last
    for line in lines:
        assert {"dice", "lr", "clips_per_s", "memory_gib", "peak_memory_gib"} <= set(line)
        assert line["clips_per_s"] > 0 and 0 < line["memory_gib"] <= line["peak_memory_gib"]
    # Decays at 0.9 and 0.95 of 3 steps both fall on step 2: 5e-4 / 100 from then on.
    assert lines[0]["lr"] == pytest.approx(5e-6)
    events = list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_torchrun_with_one_process_takes_the_ddp_path_and_matches(tmp_path):
    import socket
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(
        "import dataclasses, sys\n"
        "from reference_model.config import get_config\n"
        "from reference_model.train import TRAIN_PRESETS, train\n"
        "opts = dataclasses.replace(TRAIN_PRESETS['tiny'], steps=2, batch_size=1, accumulate=2,\n"
        "                           checkpoint_every=10)\n"
        "train(config=get_config('tiny'), out=sys.argv[1], opts=opts, progress=False,\n"
        "      data='synthetic:num_videos=2,num_frames=4,height=48,width=64,max_objects=2,seed=1')\n"
        "import torch.distributed as dist\n"
        "print('distributed' if dist.is_available() and dist.is_torchelastic_launched() else 'plain')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    plain = subprocess.run([sys.executable, str(script), str(tmp_path / "plain")], env=env,
                           capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr[-2000:]
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=1",
                          f"--master_port={port}", str(script), str(tmp_path / "ddp")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    assert "distributed" in ddp.stdout and "plain" in plain.stdout
    a = torch.load(tmp_path / "plain" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=False)["model"]
    # One process: DistributedDataParallel averages each gradient over a world of one.
    assert all(torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6) for k in a)


def _tiny_model_and_video(t_agg: int):
    from reference_model.config import get_config
    from reference_model.data import VideoClips
    from reference_model.train import build_model
    from reference_model.tokenizer import train_word_tokenizer

    source = load_source("synthetic:num_videos=1,num_frames=6,height=48,width=64,max_objects=2,seed=4")
    tokenizer = train_word_tokenizer(a["caption"] for a in source.gt["annotations"])
    ids = sorted(c["id"] for c in source.gt["categories"])
    config = get_config("tiny", num_classes=len(ids), t_agg=t_agg)
    torch.manual_seed(0)
    model = build_model(config, tokenizer).eval()
    clips = ClipDataset(source=source, clip_len=2, short_edge=48, category_ids=ids,
                        tokenize=lambda s: tokenizer(s, add_special_tokens=False)["input_ids"])
    return model, VideoClips(clips, t_agg=t_agg)


def test_video_level_caption_loss_aggregates_each_track_over_its_clips():
    from reference_model.caption_head import aggregation_plan
    from reference_model.data import collate_videos
    from reference_model.matcher import SetCriterion

    model, videos = _tiny_model_and_video(t_agg=3)
    assert len(videos) == 1 and len(videos.windows[0]) == 3  # windows 0, 2 and 4 of 5
    clips, targets, _ = collate_videos([videos[0]])
    with torch.no_grad():
        out = model(clips)
        _, _, matches = SetCriterion(config=model.cfg)(out.layers, targets)
        loss = model.video_caption_loss(out, targets, matches)
        # By hand: each captioned track's matched (clip, query) pairs where it is present,
        # Q-Former outputs weighted by the clip scores, one caption per track.
        prefixes, captions = [], []
        tracks = sorted({int(t) for tgt in targets for t in tgt.track_ids})
        for track in tracks:
            b_idx, q_idx = [], []
            for b, ((qi, ti), tgt) in enumerate(zip(matches, targets)):
                for q, k in zip(qi.tolist(), ti.tolist()):
                    if int(tgt.track_ids[k]) == track and tgt.box_valid[k].any():
                        b_idx.append(b)
                        q_idx.append(q)
                        caption = tgt.caption_ids[k]
            if not b_idx:
                continue
            enc = model.caption_inputs(out, torch.tensor(b_idx), torch.tensor(q_idx))
            weights = out.scores[b_idx, q_idx] / out.scores[b_idx, q_idx].sum()
            prefixes.append((weights[:, None, None] * enc).sum(0))
            captions.append(caption)
        expected = model.caption_head.loss(torch.stack(prefixes), captions)
    assert len(captions) >= 1 and torch.allclose(loss, expected, rtol=1e-5, atol=1e-6)
    # With T_agg 1 a single clip is read: the clip-level loss of that clip.
    model1, videos1 = _tiny_model_and_video(t_agg=1)
    clips, targets, _ = collate_videos([videos1[0]])
    with torch.no_grad():
        out = model1(clips)
        _, _, matches = SetCriterion(config=model1.cfg)(out.layers, targets)
        assert torch.allclose(model1.video_caption_loss(out, targets, matches),
                              model1.caption_loss(out, targets, matches), rtol=1e-5, atol=1e-6)


def test_video_level_caption_stage_trains_the_head_only(tmp_path):
    data = "synthetic:num_videos=3,num_frames=6,height=48,width=64,max_objects=2,seed=1"
    det = tmp_path / "det"
    assert main(["train", "--config", "tiny", "--data", data, "--out", str(det), "--steps", "2",
                 "--batch-size", "2"]) == 0
    cap = tmp_path / "cap"
    assert main(["train", "--config", "tiny", "--data", data, "--out", str(cap), "--steps", "2",
                 "--batch-size", "1", "--stage", "caption", "--video-captions",
                 "--init", str(det / "checkpoint.pt"), "--log-every", "1"]) == 0
    before = torch.load(det / "checkpoint.pt", weights_only=False)["model"]
    after = torch.load(cap / "checkpoint.pt", weights_only=False)["model"]
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"caption_head"}
    log = [json.loads(line) for line in (cap / "train_log.jsonl").read_text().splitlines()]
    assert all("lm" in line for line in log)
    assert main(["train", "--config", "tiny", "--data", data, "--out", str(tmp_path / "bad"),
                 "--steps", "1", "--batch-size", "2", "--stage", "caption", "--video-captions"]) == 2
