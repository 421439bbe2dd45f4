"""The official configurations end to end: checkpoint conversion (every manifest key maps),
the golden bundles through our whole pipeline, conversion -> predict -> benchmark records."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.errors import InputError
from reference_model.__main__ import main
from reference_model.config import CONFIGS, get_config
from reference_model.convert import convert_official, load_converted, read_official_checkpoint
from reference_model.golden import check_bundle, config_from_bundle
from reference_model.model import MaskCaptioner
from reference_model.official import clip_ranges, predict_dataset, resized_size

OFFICIAL = [name for name, config in CONFIGS.items() if config.official]
MANIFEST_CONFIG = {"vidstg_tempagg": "vidstg-tempagg", "lvvis": "lvvis"}


@pytest.mark.parametrize("manifest", sorted(MANIFEST_CONFIG))
def test_every_full_size_manifest_key_maps(golden_root: Path, manifest: str):
    keys = json.loads((golden_root / f"manifest_{manifest}.json").read_text())["keys"]
    dtypes = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64}
    official = {k: torch.empty(v["shape"], dtype=dtypes[v["dtype"]], device="meta") for k, v in keys.items()}
    with torch.device("meta"):
        model = MaskCaptioner(config=get_config(MANIFEST_CONFIG[manifest]))
    mapped = model.official_state_dict(official)
    ours = model.state_dict()
    assert set(mapped) == set(ours)
    assert all(mapped[k].shape == ours[k].shape for k in ours)
    # Every official key was consumed: one stray key is refused, naming it.
    with pytest.raises(ValueError, match="sem_seg_head.predictor.stray"):
        model.official_state_dict({**official, "sem_seg_head.predictor.stray.weight": torch.empty(1, device="meta")})


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_configs_build_at_full_size(name: str):
    config = get_config(name)
    with torch.device("meta"):
        model = MaskCaptioner(config=config)
    assert (model.box_head is None) == (config.mode == "mask")
    assert len(model.decoder.layers) == 9 and model.decoder.query_feat.weight.shape == (100, 256)
    assert model.caption_head.lm.config.hidden_size == 2560


def test_golden_bundles_through_our_pipeline(golden_bundle: Path):
    passed, rows = check_bundle(golden_bundle)
    failed = [(r.stage, r.difference) for r in rows if not r.ok(1e-5)]
    assert passed and not failed
    stages = {r.stage for r in rows}
    assert {"tracker: track_permutations", "caption: output_ids", "final: caption ids"} <= stages
    # Float tie-breaks are reported, never more than a handful.
    assert all(r.difference <= 2 for r in rows if r.note)


def test_golden_check_command(golden_root: Path, capsys):
    assert main(["golden-check", str(golden_root / "vidstg_tempagg"), "--threads", "1"]) == 0
    assert "golden check passed" in capsys.readouterr().out


def test_golden_check_fails_loudly_on_a_wrong_weight(golden_root: Path, tmp_path: Path, capsys):
    bundle = golden_root / "vidstg_tempagg"
    copy = tmp_path / "bundle"
    copy.mkdir()
    for name in ("config.json", "input.pt", "outputs.pt"):
        (copy / name).symlink_to(bundle / name)
    state = torch.load(bundle / "state_dict.pt", weights_only=True)
    state["sem_seg_head.predictor.decoder_norm.bias"] = state["sem_seg_head.predictor.decoder_norm.bias"] + 1e-3
    torch.save(state, copy / "state_dict.pt")
    assert main(["golden-check", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "golden check FAILED" in out


def _frames_folder(bundle: Path, root: Path) -> tuple[np.ndarray, dict]:
    """The bundle's video as PNG frames (lossless) and a one-video gt.json."""
    from PIL import Image

    video = torch.load(bundle / "input.pt", weights_only=True)["video_uint8_THWC"].numpy()
    (root / "JPEGImages" / "v").mkdir(parents=True)
    images = []
    for t, frame in enumerate(video):
        Image.fromarray(frame).save(root / "JPEGImages" / "v" / f"{t:05d}.png")
        images.append({"id": 100 + t, "video_id": 7, "frame_index": t, "file_name": f"v/{t:05d}.png",
                       "height": video.shape[1], "width": video.shape[2]})
    num_classes = json.loads((bundle / "config.json").read_text())["inference"]["num_classes"]
    gt = {"videos": [{"id": 7, "height": video.shape[1], "width": video.shape[2], "length": len(video)}],
          "images": images, "annotations": [],
          "categories": [{"id": i + 1, "name": f"c{i}"} for i in range(num_classes)]}
    (root / "gt.json").write_text(json.dumps(gt))
    return video, gt


def test_convert_then_predict_reproduces_the_golden_result(golden_bundle: Path, tmp_path: Path):
    bundle_config = json.loads((golden_bundle / "config.json").read_text())
    config = config_from_bundle(bundle_config)
    # A released checkpoint is a detectron2 checkpoint: {"model": official state dict}.
    checkpoint = tmp_path / "ckpt.pth"
    torch.save({"model": torch.load(golden_bundle / "state_dict.pt", weights_only=True)}, checkpoint)
    convert_official(checkpoint, config=config, out=tmp_path / "converted")
    with pytest.raises(InputError, match="already exists"):
        convert_official(checkpoint, config=config, out=tmp_path / "converted")
    model = load_converted(tmp_path / "converted")
    _frames_folder(golden_bundle, tmp_path / "data")
    from reference_model.data import load_source

    source = load_source(tmp_path / "data")
    features = torch.load(golden_bundle / "input.pt", weights_only=True)["clip_image_features"]
    reads = []
    read = source.read

    def counting_read(video_id, positions):
        reads.append(len(positions))
        return read(video_id, positions)

    source.read = counting_read
    records, results = predict_dataset(
        model, source, decode=lambda ids: " ".join(map(str, ids)),
        clip_features=(lambda v: features) if config.class_head == "zero_shot" else None,
        seed=bundle_config["seeds"]["forward_global_torch_seed"], progress=False)
    golden = json.loads((golden_bundle / "results.json").read_text())
    ours = results[0]
    assert ours["video_id"] == 7 and ours["pred_labels"] == golden["pred_labels"]
    assert ours["pred_caption_ids"] == golden["pred_caption_ids"]
    assert np.allclose(ours["pred_scores"], golden["pred_scores"], atol=1e-5)
    # Frames are read clip by clip (and once more per caption frame), never the whole video.
    assert max(reads) <= config.clip_len_infer
    # Per-frame records for the scorer: one track per output track, the caption text decoded.
    assert len({r["track_id"] for r in records}) == len(golden["pred_scores"])
    assert {r["caption"] for r in records} == {" ".join(map(str, ids)) for ids in golden["pred_caption_ids"]}
    assert all(r["image_id"] >= 100 for r in records)


def test_checkpoint_errors_name_the_file(tmp_path: Path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="bad.pth"):
        read_official_checkpoint(bad)
    with pytest.raises(InputError, match="no such checkpoint"):
        read_official_checkpoint(tmp_path / "missing.pth")
    torch.save({"model": {"a": torch.zeros(1)}, "saved": datetime.datetime(2025, 1, 1)}, tmp_path / "objects.pth")
    with pytest.raises(InputError, match="--trust-pickle"):
        read_official_checkpoint(tmp_path / "objects.pth")
    # A state dict missing the frozen parts asks for them by flag.
    torch.save({"model": {"backbone.x": torch.zeros(1)}}, tmp_path / "partial.pth")
    with pytest.raises(InputError, match="--eva"):
        convert_official(tmp_path / "partial.pth", config="vidstg-tempagg", out=tmp_path / "o")
    assert main(["convert-official", str(tmp_path / "partial.pth"), "--config", "vln", "--out",
                 str(tmp_path / "o"), "--eva", "x.pth", "--opt", "y"]) == 2


def test_resize_and_clip_rules():
    # detectron2 ResizeShortestEdge: short side to 480, long side capped at 1333, rounded.
    assert resized_size(720, 1280, short_edge=480, max_size=1333) == (480, 853)
    assert resized_size(1280, 720, short_edge=480, max_size=1333) == (853, 480)
    assert resized_size(100, 3000, short_edge=480, max_size=1333) == (44, 1333)
    # The last clip is shorter, never padded.
    assert clip_ranges(7, 5) == [(0, 5), (5, 7)]
    assert clip_ranges(3, 1) == [(0, 1), (1, 2), (2, 3)]


def _word_tokenizer(folder: Path, vocab_size: int) -> None:
    """An OPT-sized word-level tokenizer: id i decodes to "w<i>" (ids 0-3 are special)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 1, "</s>": 2, "<unk>": 3, "<s>": 0} | {f"w{i}": i for i in range(4, vocab_size)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="</s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)


def _converted_with_frames(bundle: Path, tmp_path: Path) -> tuple[np.ndarray, dict]:
    """The bundle's weights converted into ``tmp_path/converted`` (with an OPT-sized word
    tokenizer) and its video written to ``tmp_path/data``."""
    checkpoint = tmp_path / "ckpt.pth"
    torch.save(torch.load(bundle / "state_dict.pt", weights_only=True), checkpoint)
    convert_official(checkpoint, config=config_from_bundle(json.loads((bundle / "config.json").read_text())),
                     out=tmp_path / "converted")
    _word_tokenizer(tmp_path / "converted" / "tokenizer", 50272)
    return _frames_folder(bundle, tmp_path / "data")


def test_predict_command_writes_scorable_predictions(golden_root: Path, tmp_path: Path):
    bundle = golden_root / "vidstg_tempagg"
    video, gt = _converted_with_frames(bundle, tmp_path)
    inputs = torch.load(bundle / "input.pt", weights_only=True)
    from reference_model.clip_features import save_feature_file

    save_feature_file(tmp_path / "clip.pkl", {im["file_name"]: f[None] for im, f in
                                              zip(gt["images"], inputs["clip_image_features"])})
    args = ["predict", "--checkpoint", str(tmp_path / "converted"), "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / "preds.json"), "--results-json", str(tmp_path / "results.json"),
            "--cpu", "--threads", "1"]
    assert main(args) == 2  # zero-shot classes need the CLIP features: a one-line error
    assert main(args + ["--t-agg", "4"]) == 2  # published settings are not silently overridden
    assert main(args + ["--clip-features", str(tmp_path / "clip.pkl")]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    golden = json.loads((bundle / "results.json").read_text())
    assert results[0]["pred_caption_ids"] == golden["pred_caption_ids"]
    preds = json.loads((tmp_path / "preds.json").read_text())
    # Captions are the OPT tokenizer's decoding (special tokens skipped) of the golden ids.
    expected = {" ".join(f"w{i}" for i in ids if i > 3) for ids in golden["pred_caption_ids"]}
    assert {p["caption"] for p in preds} == expected
    from benchmark import chota

    gt["annotations"] = [{"id": 1, "image_id": 100, "track_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20],
                          "caption": "a thing", "area": 400, "iscrowd": 0}]
    result = chota(gt, preds, iou="box", caption_metrics=("cider",))
    assert 0 <= result["DetA"] <= 1
    assert main(args + ["--clip-features", str(tmp_path / "clip.pkl"), "--config", "lvvis"]) == 2


def test_predict_takes_another_inference_clip_length(golden_root: Path, tmp_path: Path, monkeypatch):
    """MaskCaptioner Table 7 varies the inference clip length of one trained model."""
    import reference_model.official as official

    from reference_model.clip_features import save_feature_file

    bundle = golden_root / "vidstg_tempagg"
    video, gt = _converted_with_frames(bundle, tmp_path)
    inputs = torch.load(bundle / "input.pt", weights_only=True)
    save_feature_file(tmp_path / "clip.pkl", {im["file_name"]: f[None] for im, f in
                                              zip(gt["images"], inputs["clip_image_features"])})
    seen = []
    monkeypatch.setattr(official, "predict_dataset",
                        lambda model, source, **kwargs: seen.append(model.cfg.clip_len_infer) or ([], []))
    args = ["predict", "--checkpoint", str(tmp_path / "converted"), "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / "preds.json"), "--cpu", "--clip-features", str(tmp_path / "clip.pkl")]
    assert main(args) == 0 and main(args + ["--clip-len", "3"]) == 0
    assert seen[0] != 3 and seen[1] == 3


def test_a_vln_like_bundle_takes_the_general_path(golden_root: Path, tmp_path: Path):
    """The held-back vln configuration (masks, a Linear class head with 1 class, vote tracker,
    aggregated captions, hysteresis) built from a bundle config alone: the lvvis bundle's
    weights with the zero-shot head replaced by a Linear one."""
    bundle = json.loads((golden_root / "lvvis" / "config.json").read_text())
    bundle["inference"].update({
        "inference_clip_len": 1, "clip_classifier_zero_shot": False, "num_classes": 1,
        "tracker": "topk_vote_memory", "topk_matching_num_k": 2, "topk_matching_num_t(memory)": 3,
        "multi_frame_captioning(aggregation)": True, "aggregation_method": "weighted mean", "aggregation_num_t": 3,
        "hysteresis": {"enabled": True, "t_low": 0.3, "t_high": 0.9, "min_duration": 5},
        "per_frame_score_threshold": 0.0})
    config = config_from_bundle(bundle)
    assert (config.mode, config.class_head, config.tracker, config.caption_mode, config.hysteresis) == \
        ("mask", "linear", "vote", "weighted-mean", (0.3, 0.9, 5))
    state = torch.load(golden_root / "lvvis" / "state_dict.pt", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("sem_seg_head.predictor.class_embed.")}
    generator = torch.Generator().manual_seed(0)
    state["sem_seg_head.predictor.class_embed.weight"] = torch.randn(2, 256, generator=generator) * 0.5
    state["sem_seg_head.predictor.class_embed.bias"] = torch.tensor([2.0, 0.0])
    model = MaskCaptioner(config=config)
    model.load_state_dict(model.official_state_dict(state))
    model.eval()
    video = torch.load(golden_root / "lvvis" / "input.pt", weights_only=True)["video_uint8_THWC"].numpy()
    from reference_model.official import Trace, run_video

    trace = Trace()
    torch.manual_seed(1234)
    result = run_video(model, lambda positions: video[positions], num_frames=len(video), trace=trace)
    assert trace.values["track_permutations"].shape == (7, 50)  # one-frame clips
    captioned = [t for t in trace.values["caption_traces"]]
    assert captioned and all(len(t.calls) == 3 for t in captioned)  # linspace over 7 clips, 3 calls
    assert all(len(ids) > 0 for ids in result.caption_ids if ids)
    # Hysteresis: every kept track has an active run (score >= 0.9 somewhere).
    assert all(max(scores) >= 0.9 for scores in result.scores_per_frame)


def test_a_converted_checkpoint_fine_tuned_at_learning_rate_0_keeps_the_golden_result(golden_bundle: Path,
                                                                                        tmp_path: Path):
    """train --init CONVERTED -> checkpoint.pt -> predict goes through the official modules
    unchanged: one training step at learning rate 0 (losses, backward, optimiser, checkpoint,
    reload in float32) still gives the official code's captions and scores."""
    video, gt = _converted_with_frames(golden_bundle, tmp_path)
    # Training data: the same frames with one captioned object.
    height, width = video.shape[1:3]
    train = {**gt, "annotations": [
        {"id": i + 1, "image_id": im["id"], "track_id": 1, "category_id": 1, "caption": "w5 w6 w7",
         "bbox": [width / 4, height / 4, width / 2, height / 2]} for i, im in enumerate(gt["images"])]}
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "gt.json").write_text(json.dumps(train))
    (tmp_path / "train" / "JPEGImages").symlink_to(tmp_path / "data" / "JPEGImages")
    inputs = torch.load(golden_bundle / "input.pt", weights_only=True)
    from reference_model.clip_features import save_feature_file

    save_feature_file(tmp_path / "clip.pkl", {im["file_name"]: f[None] for im, f in
                                              zip(gt["images"], inputs["clip_image_features"])})
    assert main(["train", "--init", str(tmp_path / "converted"), "--data", str(tmp_path / "train"),
                 "--clip-features", str(tmp_path / "clip.pkl"), "--stage", "end2end", "--steps", "1",
                 "--batch-size", "1", "--lr", "0", "--out", str(tmp_path / "run")]) == 0
    logged = json.loads((tmp_path / "run" / "train_log.jsonl").read_text().splitlines()[-1])
    assert "lm" in logged and all(np.isfinite(v) for v in logged.values())
    assert main(["predict", "--checkpoint", str(tmp_path / "run" / "checkpoint.pt"), "--data",
                 str(tmp_path / "data"), "--clip-features", str(tmp_path / "clip.pkl"), "--out",
                 str(tmp_path / "preds.json"), "--results-json", str(tmp_path / "results.json"), "--cpu"]) == 0
    results = json.loads((tmp_path / "results.json").read_text())[0]
    golden = json.loads((golden_bundle / "results.json").read_text())
    assert results["pred_caption_ids"] == golden["pred_caption_ids"]
    np.testing.assert_allclose(results["pred_scores"], golden["pred_scores"], rtol=1e-4, atol=1e-5)
