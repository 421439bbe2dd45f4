"""Validation of submissions against the track's GT: one test per bad-input class, each
checking that the message names the file, the record and the field."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.errors import InputError
from benchmark.io import load_ground_truth
from leaderboard.submission import Limits
from leaderboard.validation import validate_predictions


@pytest.fixture(scope="module")
def gt(gt_json):
    return load_ground_truth(gt_json)


def _validate(preds, gt, iou="box", **kw):
    return validate_predictions(preds, gt, iou=iou, source="team.json", **kw)


def test_valid_golden_predictions_pass_with_counts(preds, gt):
    report = _validate(preds, gt)
    assert (report.n_records, report.n_detections, report.n_videos, report.n_gt_videos) == (29, 29, 3, 3)
    # Hand count from pred.json: scores strictly above 0.5 (several are exactly 0.5).
    assert report.n_above_threshold == sum(p["score"] > 0.5 for p in preds) == 13
    assert report.warnings(0.5) == []


@pytest.mark.parametrize("mutate, record, field, message", [
    (lambda p: p[3].pop("image_id"), "predictions[3]", "image_id", "missing field"),
    (lambda p: p[4].pop("score"), "predictions[4]", "score", "missing field"),
    (lambda p: p[2].update(image_id="18"), "predictions[2]", "image_id", "must be an integer"),
    (lambda p: p[2].update(track_id=True), "predictions[2]", "track_id", "must be an integer"),
    (lambda p: p[5].update(caption=7), "predictions[5]", "caption", "must be a string"),
    (lambda p: p[6].update(bbox=[1, 2, 3]), "predictions[6]", "bbox", r"must be \[x, y, w, h\]"),
    (lambda p: p[7].update(bbox=[1, float("nan"), 3, 4]), "predictions[7]", "bbox", "NaN"),
    (lambda p: p[7].update(bbox=[1, 1, -3, 4]), "predictions[7]", "bbox", "negative width"),
    (lambda p: p[8].update(score=float("nan")), "predictions[8]", "score", "finite"),
    (lambda p: p[8].update(score=1.5), "predictions[8]", "score", r"must be in \[0, 1\], got 1.5"),
    (lambda p: p[9].update(image_id=99999), "predictions[9]", "image_id",
     "image_id 99999 is not an image of the ground truth"),
    (lambda p: p[0].update(video_id=2), "predictions[0]", "video_id",
     "video_id 2 disagrees with image_id 18, which belongs to video 1"),
    (lambda p: p.append(dict(p[0])), "predictions[29]", "track_id", "duplicate detection"),
    (lambda p: p[1].update(caption="x" * 3000), "predictions[1]", "caption", "above the 2000 limit"),
    (lambda p: p.__setitem__(3, "oops"), "predictions[3]", "image_id", "must be a JSON object"),
])
def test_bad_records_are_named(preds, gt, mutate, record, field, message):
    preds = copy.deepcopy(preds)
    mutate(preds)
    with pytest.raises(InputError, match=message) as info:
        _validate(preds, gt)
    err = info.value
    assert (err.source, err.record, err.field) == ("team.json", record, field)
    assert str(err).startswith(f"team.json: record {record}")


def test_nan_from_json_text_is_caught(gt):
    # Python's json module reads the non-standard NaN token: it must not reach the scorer.
    preds = json.loads('[{"image_id": 1, "track_id": 1, "bbox": [0, 0, 1, 1], '
                       '"score": NaN, "caption": ""}]')
    assert math.isnan(preds[0]["score"])
    with pytest.raises(InputError, match="score"):
        _validate(preds, gt)


@pytest.mark.parametrize("obj, message", [
    ([], "holds no predictions"),
    ({"videos": []}, "expected a JSON list"),
    ("text", "expected a JSON list"),
])
def test_wrong_top_level(gt, obj, message):
    with pytest.raises(InputError, match=message):
        _validate(obj, gt)


def test_record_limit(preds, gt):
    with pytest.raises(InputError, match="holds 29 predictions, above the 10 limit"):
        _validate(preds, gt, limits=Limits(max_records=10))


def test_mask_track_needs_masks_of_the_frame_size(preds, gt):
    assert _validate(preds, gt, iou="mask").n_records == 29
    no_mask = copy.deepcopy(preds)
    del no_mask[4]["segmentation"]
    with pytest.raises(InputError, match="mask IoU needs a segmentation") as info:
        _validate(no_mask, gt, iou="mask")
    assert info.value.record == "predictions[4]"
    wrong = copy.deepcopy(preds)
    wrong[6]["segmentation"] = mask_utils.encode(np.ones((48, 64), np.uint8, order="F"))
    wrong[6]["segmentation"]["counts"] = wrong[6]["segmentation"]["counts"].decode()
    with pytest.raises(InputError, match=r"mask size \[48, 64\] differs from the video's \[96, 128\]") as info:
        _validate(wrong, gt, iou="mask")
    assert (info.value.source, info.value.record) == ("team.json", "predictions[6]")


@pytest.mark.parametrize("segmentation, message", [
    ({"size": [96, 128], "counts": "0TS<"}, "run lengths sum to 12388 pixels, the mask has 12288"),
    ({"size": [96, 128], "counts": "!!!!~~~~"}, "character '!' at position 0"),
    ({"size": [96, 128], "counts": [1, 2]}, "uncompressed RLE covers 3 pixels"),
    ([[0, 0, 1e9, 0, 5, 5]], "polygon vertices must lie within one image size"),
])
def test_validate_and_score_refuse_the_same_masks(preds, gt, gt_json, segmentation, message):
    import benchmark

    bad = copy.deepcopy(preds)
    bad[6]["segmentation"] = segmentation
    bad[6].pop("bbox", None)
    with pytest.raises(InputError, match=message) as info:
        _validate(bad, gt, iou="mask")
    assert (info.value.record, info.value.field) == ("predictions[6]", "segmentation")
    for iou in ("mask", "box"):  # a box track boxes a lone mask: the same check
        with pytest.raises(InputError, match=message) as info:
            benchmark.chota(gt_json, bad, iou=iou, caption_metrics=())
        assert (info.value.record, info.value.field) == ("predictions[6]", "segmentation")


def test_box_track_needs_boxes(preds, gt):
    preds = copy.deepcopy(preds)
    del preds[2]["bbox"]
    with pytest.raises(InputError, match="box track needs a box") as info:
        _validate(preds, gt, iou="box")
    assert (info.value.record, info.value.field) == ("predictions[2]", "bbox")


def test_per_track_predictions(gt):
    track = {"video_id": 3, "score": 0.9, "caption": "a dog",
             "bboxes": [[1, 1, 5, 5]] + [None] * 7}
    report = _validate([track], gt)
    assert (report.n_records, report.n_detections, report.n_videos) == (1, 1, 1)
    assert report.warnings(0.5) == ["predictions cover 1 of the 3 videos; the missing videos "
                                    "count as all misses"]
    with pytest.raises(InputError, match="video_id 42 is not a video of the ground truth"):
        _validate([{**track, "video_id": 42}], gt)
    with pytest.raises(InputError, match=r"one entry per frame \(8 for video 3\), got 2") as info:
        _validate([{**track, "bboxes": [None, None]}], gt)
    assert info.value.field == "bboxes"


def test_all_scores_below_threshold_is_a_warning(preds, gt):
    low = [{**p, "score": 0.5} for p in preds]
    warnings = _validate(low, gt).warnings(0.5)
    assert warnings[0].startswith("no prediction has a score above 0.5")


def test_a_duplicate_below_the_threshold_validates_as_the_scorer_filters_it(preds, gt):
    # The scorer keeps score > threshold before it checks one detection per track and frame;
    # validation agrees with it.
    duplicate = dict(copy.deepcopy(preds[0]), score=0.1)
    assert _validate(preds + [duplicate], gt).n_records == len(preds) + 1
    with pytest.raises(InputError, match="duplicate detection") as err:
        _validate(preds + [dict(duplicate, score=0.99)], gt)
    assert err.value.field == "track_id" and "team.json" in str(err.value)
