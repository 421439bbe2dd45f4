"""The official tracker and post-processing against the golden bundles (from the golden
per-clip outputs only) and on hand-built cases for the branches the bundles do not reach."""

from __future__ import annotations

import doctest
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.datasets.predictions import convert_predictions
from reference_model import postprocess as pp
from reference_model.postprocess import (
    Hysteresis, VideoResult, caption_clips, captioned_tracks, clip_scores, hysteresis_active, postprocess,
    track_records,
)
from reference_model.tracker import VoteTracker

# The golden scores come from another torch build whose float32 sqrt rounds differently in the
# last bit (1 ulp = 6e-8 near 1); everything discrete must still be identical.
SCORE_TOL = 1e-6


def _load(bundle: Path) -> tuple[dict, dict]:
    return (torch.load(bundle / "outputs.pt", weights_only=True),
            json.loads((bundle / "config.json").read_text()))


def _tracker(inference: dict) -> VoteTracker:
    if inference["tracker"] == "hungarian_prev_clip":
        return VoteTracker(memory_len=1, top_k=1)
    assert inference["tracker"] == "topk_vote_memory"
    return VoteTracker(memory_len=inference["topk_matching_num_t(memory)"], top_k=inference["topk_matching_num_k"])


def _tracked(outputs: dict, mode: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Golden per-clip outputs gathered into tracks with the golden permutations."""
    clips, perms = outputs["clips"], outputs["track_permutations"]
    cls = torch.stack([c["pred_logits"][0][p] for c, p in zip(clips, perms)])
    obj = torch.stack([c["pred_object_logits"][0][p] for c, p in zip(clips, perms)])
    key = "pred_boxes" if mode == "box" else "pred_masks"
    return cls, obj, torch.cat([c[key][0][p] for c, p in zip(clips, perms)], dim=1)


def _golden_postprocess(outputs: dict, config: dict) -> VideoResult:
    inf, size = config["inference"], config["input"]
    cls, obj, geometry = _tracked(outputs, config["mode"])
    caption_ids = [None] * cls.shape[1]
    for caption in outputs["captions"]:
        caption_ids[caption["query_id"]] = caption["output_ids"][0].tolist()
    h = inf["hysteresis"]
    return postprocess(
        class_logits=cls, object_logits=obj, geometry=geometry, caption_ids=caption_ids,
        padded_size=tuple(size["padded_size_hw"]), image_size=tuple(size["resized_size_hw"]),
        output_size=tuple(size["raw_size_hw"]), mode=config["mode"], clip_len=inf["inference_clip_len"],
        presence_threshold=inf["presence_threshold_box_mode"], top_k=inf["topk_tracks_mask_mode"],
        hysteresis=Hysteresis(low=h["t_low"], high=h["t_high"], min_duration=h["min_duration"]) if h["enabled"] else None,
        per_frame_score_threshold=inf["per_frame_score_threshold"])


def _same_json(ours, golden, float_diffs: list[float]) -> bool:
    """Same structure and non-float values; float differences are collected."""
    if isinstance(golden, float):
        float_diffs.append(abs(ours - golden))
        return isinstance(ours, float)
    if isinstance(golden, list):
        return isinstance(ours, list) and len(ours) == len(golden) and all(
            _same_json(a, b, float_diffs) for a, b in zip(ours, golden))
    if isinstance(golden, dict):
        return isinstance(ours, dict) and list(ours) == list(golden) and all(
            _same_json(ours[k], golden[k], float_diffs) for k in golden)
    return type(ours) is type(golden) and ours == golden


# --------------------------------------------------------------------------- golden bundles

def test_tracker_reproduces_golden_indices(golden_bundle):
    outputs, config = _load(golden_bundle)
    tracker = _tracker(config["inference"])
    perms = []
    for i, clip in enumerate(outputs["clips"]):
        if i:
            record = outputs["tracker"][i - 1]
            assert record["clip"] == i and len(tracker.memory) == record["memory_len"]
        perms.append(tracker.step(clip["pred_embds"][0]))
        if i:
            assert torch.equal(perms[-1], record["indices"])
    assert torch.equal(torch.stack(perms), outputs["track_permutations"])


def test_tracker_follows_shuffled_queries(golden_bundle):
    # The golden tracks are the identity; shuffling the queries of every later clip must
    # give back exactly the shuffle.
    outputs, config = _load(golden_bundle)
    tracker = _tracker(config["inference"])
    generator = torch.Generator().manual_seed(0)
    for i, clip in enumerate(outputs["clips"]):
        embeds = clip["pred_embds"][0]
        shuffle = torch.randperm(len(embeds), generator=generator) if i else torch.arange(len(embeds))
        indices = tracker.step(embeds[shuffle])
        assert torch.equal(shuffle[indices], outputs["track_permutations"][i])


def test_clip_scores_and_captioned_tracks(golden_bundle):
    outputs, config = _load(golden_bundle)
    cls, obj, _ = _tracked(outputs, config["mode"])
    scores = clip_scores(cls, obj).T
    assert (scores - outputs["clip_scores_S"]).abs().max() <= SCORE_TOL
    # S is built from these two factors.
    assert torch.equal(cls[:, :, :-1].sigmoid().amax(-1).T, outputs["clip_scores_cls"])
    assert torch.equal(obj.softmax(-1)[:, :, 0].T, outputs["clip_scores_obj"])
    threshold = config["inference"]["captioning_thresh"]
    assert torch.equal(captioned_tracks(scores, threshold=threshold), outputs["captioned_query_ids"])
    assert [c["query_id"] for c in outputs["captions"]] == outputs["captioned_query_ids"].tolist()


def test_caption_clips(golden_bundle):
    outputs, config = _load(golden_bundle)
    inf = config["inference"]
    num_t = inf["aggregation_num_t"] if inf["multi_frame_captioning(aggregation)"] else None
    scores = outputs["clip_scores_S"]
    for k, caption in enumerate(outputs["captions"]):
        clips = caption_clips(scores[caption["query_id"]], num_t=num_t)
        if num_t is not None:
            assert torch.equal(scores[caption["query_id"]][clips], caption["aggregation_scores"])
        else:
            # The chosen clip shows in the random frame draw: randint(0, frames of the clip).
            start, end = outputs["clips"][int(clips)]["frame_range"].tolist()
            assert outputs["randint_calls"][k]["args"][1] == min(end, len(outputs["images_tensor"])) - start


def test_postprocess_reproduces_final_and_results_json(golden_bundle):
    outputs, config = _load(golden_bundle)
    result = _golden_postprocess(outputs, config)
    final = outputs["final"]
    assert list(result.image_size) == final["image_size"].tolist()
    assert result.labels == final["pred_labels"].tolist()
    assert (torch.tensor(result.scores, dtype=torch.float64) - final["pred_scores"]).abs().max() <= SCORE_TOL
    per_frame = torch.tensor(result.scores_per_frame, dtype=torch.float64)
    assert per_frame.shape == final["pred_scores_per_frame"].shape
    assert (per_frame - final["pred_scores_per_frame"]).abs().max() <= SCORE_TOL
    assert result.caption_ids == [ids.tolist() for ids in final["pred_caption_ids"]]
    if config["mode"] == "box":
        boxes = torch.tensor([[box if box is not None else [-1] * 4 for box in row] for row in result.boxes])
        assert torch.equal(boxes, final["pred_boxes"])
    else:
        assert list(result.masks.shape) == final["pred_masks_shape"].tolist()
        assert torch.equal(torch.from_numpy(np.packbits(result.masks.numpy(), axis=-1)), final["pred_masks_packed"])
    diffs: list[float] = []
    golden = json.loads((golden_bundle / "results.json").read_text())
    assert _same_json(json.loads(result.to_json()), golden, diffs)
    assert max(diffs) <= SCORE_TOL


def test_no_tracker_weights_in_the_full_size_checkpoints(golden_root):
    # The tracker and the post-processing have no parameters; the official model's only
    # top-level modules with weights are the detector and the caption head.
    for name in ("manifest_vidstg_tempagg.json", "manifest_lvvis.json"):
        keys = json.loads((golden_root / name).read_text())["keys"]
        assert {k.split(".")[0] for k in keys} == {"backbone", "sem_seg_head", "captioning_head"}


# --------------------------------------------------------------------------- hand-built cases

E = torch.eye(4)
A, B, N1, N2 = E[0], E[1], E[3], E[2]
N3 = 0.5 * A + math.sqrt(0.75) * N2   # a new query: cost 0.5 to A, 0.134 to N2
# Clip 1: A, B, N1. Clip 2: A is gone (N2 takes slot 0). Clip 3: A is back next to N3.
SEQUENCE = [[A, B, N1], [B, N2, N1], [B, A, N3]]


def _run(tracker: VoteTracker) -> list[list[int]]:
    return [tracker.step(torch.stack(q)).tolist() for q in SEQUENCE]


def test_vote_tracker_single_best_entry_while_memory_is_short():
    # 2 entries < K = 3: the entry with the lowest total wins. Clip 1's entry costs 0 + 0 + 1,
    # clip 2's 0.134 + 0 + 1, so A returns to slot 0.
    assert _run(VoteTracker(memory_len=3, top_k=3))[1:] == [[1, 0, 2], [1, 0, 2]]
    assert _run(VoteTracker(memory_len=2, top_k=1))[2] == [1, 0, 2]


def test_vote_tracker_average_weighs_the_newest_entry_most():
    # K = 2 entries averaged with weights 1 (clip 1) and 2 (clip 2): slot 0 costs A 2/2 and
    # N3 (0.5 + 2 * 0.134) / 2; N3 wins and A gets the leftover slot 2. Weights 2 and 1 would
    # give A 0.5 against N3 0.63, i.e. A back in slot 0.
    assert _run(VoteTracker(memory_len=2, top_k=2))[2] == [2, 0, 1]


def test_vote_tracker_memory_of_one_is_the_previous_clip():
    assert _run(VoteTracker(memory_len=1, top_k=3))[2] == [2, 0, 1]
    with pytest.raises(ValueError):
        VoteTracker(memory_len=0, top_k=1)


def test_hysteresis_keeps_a_short_run_at_the_end():
    scores = torch.tensor([[0.95, 0.95, 0.1, 0.1, 0.95], [0.6, 0.9, 0.6, 0.6, 0.3]])
    active = hysteresis_active(scores, low=0.4, high=0.85, min_duration=3)
    # Row 0: the 2-frame run is dropped, the 1-frame run at the end is not (official quirk).
    # Row 1: the forward pass holds frames 1-3, the backward pass adds frame 0.
    assert active.int().tolist() == [[0, 0, 0, 0, 1], [1, 1, 1, 1, 0]]


def _logits(clip_scores_: list[list[float]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(nclips, Q, 2) class logits (1 class + no class) and objectness 1, so that S equals
    the given per-clip, per-track scores."""
    s = torch.tensor(clip_scores_, dtype=torch.float64).T  # (nclips, Q)
    cls = torch.stack([torch.logit(s ** 2), torch.zeros_like(s)], dim=-1).float()
    obj = torch.stack([torch.zeros_like(s), torch.full_like(s, -torch.inf)], dim=-1).float()
    return cls, obj


BOX_S = [[0.95, 0.1, 0.95], [0.1, 0.1, 0.1], [0.3, 0.3, 0.3]]   # 3 tracks, 3 clips of 2, 2, 1 frames
BOX_SIZES = dict(padded_size=(100, 100), image_size=(100, 80), output_size=(50, 40), clip_len=2)


def _boxes(num_tracks: int, num_frames: int) -> torch.Tensor:
    box = torch.tensor([0.1, 0.2, 0.9, 0.9])   # x and w scale by 100 / 80, so w clamps to 1
    return box.expand(num_tracks, num_frames, 4).clone()


def test_box_presence_clips_and_rounding():
    cls, obj = _logits(BOX_S)
    result = postprocess(class_logits=cls, object_logits=obj, geometry=_boxes(3, 5), caption_ids=[[2, 5], None, [2]],
                         mode="box", **BOX_SIZES)
    box = [5, 10, 40, 45]
    assert result.boxes == [[box, box, None, None, box], [box] * 5]
    assert result.caption_ids == [[2, 5], [2]] and result.labels == [0, 0]
    assert result.scores_per_frame[0] == pytest.approx([0.95, 0.95, 0.1, 0.1, 0.95], abs=1e-6)


def test_box_hysteresis_and_per_frame_threshold():
    cls, obj = _logits(BOX_S)
    kwargs = dict(class_logits=cls, object_logits=obj, geometry=_boxes(3, 5), caption_ids=[None] * 3, mode="box",
                  **BOX_SIZES)
    result = postprocess(**kwargs, hysteresis=Hysteresis(low=0.4, high=0.85, min_duration=3))
    box = [5, 10, 40, 45]
    assert result.boxes == [[None, None, None, None, box]]   # track 2 never reaches 0.85
    # Box mode nulls the frames at or under the threshold and keeps the (now empty) track.
    result = postprocess(**kwargs, per_frame_score_threshold=0.5)
    assert result.boxes == [[box, box, None, None, box], [None] * 5]


def test_mask_top_k_crop_resize_and_threshold():
    # 4 tracks, 2 clips of 2 + 1 frames; padded 8x8, image 8x4 (right half is padding).
    cls, obj = _logits([[0.9, 0.9], [0.2, 0.2], [0.8, 0.6], [0.5, 0.5]])
    masks = torch.full((4, 3, 4, 4), -1.0)
    masks[0, :, :, :2] = 1.0   # the unpadded half: the whole frame after cropping
    kwargs = dict(class_logits=cls, object_logits=obj, geometry=masks, caption_ids=[[2, q] for q in range(4)],
                  padded_size=(8, 8), image_size=(8, 4), output_size=(4, 2), mode="mask", clip_len=2, top_k=2)
    result = postprocess(**kwargs)
    assert sorted(result.caption_ids) == [[2, 0], [2, 2]]
    assert result.masks.shape == (2, 3, 4, 2)
    first = [ids[1] for ids in result.caption_ids].index(0)
    assert bool(result.masks[first].all()) and not bool(result.masks[1 - first].any())
    assert result.scores_per_frame[first] == pytest.approx([0.9, 0.9, 0.9], abs=1e-6)
    # Track score: sqrt(max_c sigmoid(mean cls) * mean objectness) -> sqrt(sigmoid(mean logit)).
    track2 = math.sqrt(torch.tensor([0.64, 0.36]).logit().mean().sigmoid().item())
    assert result.scores[1 - first] == pytest.approx(track2, abs=1e-6)
    # Mask mode: the per-frame threshold drops tracks by their score; hysteresis drops whole tracks.
    assert [ids[1] for ids in postprocess(**kwargs, per_frame_score_threshold=0.75).caption_ids] == [0]
    hysteresis = Hysteresis(low=0.5, high=0.85, min_duration=1)
    assert [ids[1] for ids in postprocess(**kwargs, hysteresis=hysteresis).caption_ids] == [0]


def test_track_records_feed_the_benchmark_converter():
    cls, obj = _logits(BOX_S)
    result = postprocess(class_logits=cls, object_logits=obj, geometry=_boxes(3, 5), caption_ids=[None] * 3,
                         mode="box", **BOX_SIZES)
    records = track_records(result, video_id=7, category_ids=[4], captions=["a dog", "a cat"])
    gt = {"videos": [{"id": 7, "height": 50, "width": 40}],
          "images": [{"id": 100 + f, "video_id": 7, "frame_index": f, "file_name": f"{f}.jpg"} for f in range(5)]}
    frames = convert_predictions(records, gt, show_progress=False)
    assert [(r["track_id"], r["image_id"]) for r in frames] == [(1, 100), (1, 101), (1, 104)] + [
        (2, 100 + f) for f in range(5)]
    assert frames[0]["bbox"] == [5.0, 10.0, 40.0, 45.0] and frames[0]["category_id"] == 4
    assert frames[0]["caption"] == "a dog" and frames[-1]["caption"] == "a cat"
    with pytest.raises(ValueError):
        track_records(result, video_id=7, category_ids=[4], captions=["a dog"])


def test_mask_track_records_are_rle():
    masks = torch.zeros(1, 2, 3, 4, dtype=torch.bool)
    masks[0, 1, 1:, 2:] = True
    result = VideoResult(image_size=(3, 4), scores=[0.7], labels=[0], scores_per_frame=[[0.7, 0.7]],
                         caption_ids=[[2]], masks=masks)
    gt = {"videos": [{"id": 1, "height": 3, "width": 4}],
          "images": [{"id": f, "video_id": 1, "frame_index": f, "file_name": f"{f}.jpg"} for f in range(2)]}
    frames = convert_predictions(track_records(result, video_id=1, category_ids=[9], captions=["x"]), gt,
                                 show_progress=False)
    assert frames[1]["bbox"] == [2.0, 1.0, 2.0, 2.0]
    assert json.loads(result.to_json())["pred_masks_rle"][0][1] == frames[1]["segmentation"]


def test_mode_is_checked():
    cls, obj = _logits(BOX_S)
    with pytest.raises(ValueError):
        postprocess(class_logits=cls, object_logits=obj, geometry=_boxes(3, 5), caption_ids=[None] * 3,
                    mode="boxes", **BOX_SIZES)
