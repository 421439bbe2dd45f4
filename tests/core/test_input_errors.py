"""Bad input never crashes with a traceback or scores silently: each error names the file,
the record and the field."""

import gzip
import json
import math

import pytest

from benchmark import chota
from benchmark.cli import main
from benchmark.errors import InputError


def gt_dict():
    return {
        "videos": [{"id": 1, "name": "v1", "height": 20, "width": 20}],
        "images": [{"id": 10, "video_id": 1, "frame_index": 0},
                   {"id": 11, "video_id": 1, "frame_index": 1}],
        "annotations": [
            {"image_id": 10, "track_id": 1, "bbox": [0, 0, 5, 5], "caption": "a red dog"},
            {"image_id": 11, "track_id": 1, "bbox": [1, 0, 5, 5], "caption": "a red dog"},
        ],
    }


def pred(**overrides):
    record = {"image_id": 10, "track_id": 7, "bbox": [0, 0, 5, 5], "score": 0.9,
              "caption": "a red dog"}
    record.update(overrides)
    return record


def error_of(gt, predictions, **options) -> InputError:
    with pytest.raises(InputError) as info:
        chota(gt, predictions, caption_metrics=("cider",), **options)
    return info.value


@pytest.mark.parametrize("bad, field, text", [
    (pred(bbox=[0, math.nan, 5, 5]), "bbox", "NaN"),
    (pred(bbox=[0, 0, -5, 5]), "bbox", "negative width"),
    (pred(bbox=[0, 0, 5]), "bbox", "[x, y, w, h]"),
    (pred(bbox=["0", 0, 5, 5]), "bbox", "[x, y, w, h]"),
    (pred(score=math.nan), "score", "finite"),
    (pred(score="high"), "score", "finite"),
    (pred(image_id=999), "image_id", "not an image of the ground truth"),
    (pred(image_id="10"), "image_id", "integer"),
    (pred(track_id=1.5), "track_id", "integer"),
    (pred(caption=["a", "dog"]), "caption", "string"),
    (pred(video_id=2), "video_id", "disagrees"),
    ({"image_id": 10, "track_id": 7, "score": 0.9, "caption": "x"}, "bbox", "'bbox' or a 'segmentation'"),
])
def test_bad_prediction_record_is_named(bad, field, text):
    error = error_of(gt_dict(), [pred(track_id=3), bad])
    assert error.record == "predictions[1]"
    assert error.field == field
    assert text in str(error)


def test_missing_fields_are_named():
    broken = pred()
    del broken["track_id"]
    error = error_of(gt_dict(), [pred(), broken])
    assert (error.record, error.field) == ("predictions[1]", "track_id")
    assert "missing field" in str(error)
    gt = gt_dict()
    del gt["annotations"][1]["caption"]
    error = error_of(gt, [pred()])
    assert (error.record, error.field) == ("annotations[1]", "caption")


def test_missing_captions_are_fine_without_caption_metrics():
    gt = gt_dict()
    for a in gt["annotations"]:
        del a["caption"]
    result = chota(gt, [pred(caption=None)], caption_metrics=())
    assert result["DetA"] == pytest.approx(0.5)
    assert "CapA" not in result.to_dict()


def test_duplicate_detection_names_both_records():
    error = error_of(gt_dict(), [pred(), pred(track_id=8), pred(bbox=[1, 1, 2, 2])])
    assert error.record == "predictions[2]" and error.field == "track_id"
    assert "predictions[0]" in str(error)
    gt = gt_dict()
    gt["annotations"].append(dict(gt["annotations"][0]))
    assert error_of(gt, [pred()]).record == "annotations[2]"


def test_swapped_inputs_are_detected():
    error = error_of([pred()], gt_dict())
    assert "swapped" in str(error)
    with pytest.raises(InputError, match="swapped"):
        chota(gt_dict(), gt_dict(), caption_metrics=())


def test_malformed_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "pred.json"
    bad.write_text('[{"image_id": 10,')
    error = error_of(gt_dict(), bad)
    assert error.source == str(bad) and "not valid JSON" in str(error)
    error = error_of(tmp_path / "nope.json", [])
    assert "not found" in str(error)
    packed = tmp_path / "pred.json.gz"
    packed.write_bytes(gzip.compress(json.dumps([pred()]).encode()))
    assert chota(gt_dict(), packed, caption_metrics=())["HOTA_TP"] == 1


def test_unknown_video_in_per_track_predictions():
    gt = {"videos": [{"id": 1, "length": 2}],
          "annotations": [{"id": 1, "video_id": 1, "bboxes": [[0, 0, 4, 4], None],
                           "caption": "a cat"}]}
    error = error_of(gt, [{"video_id": 5, "score": 0.9, "bboxes": [[0, 0, 4, 4], None],
                           "caption": "a cat"}])
    assert (error.record, error.field) == ("predictions[0]", "video_id")
    error = error_of(gt, [{"video_id": 1, "score": 0.9, "bboxes": [[0, 0, 4, 4]],
                           "caption": "a cat"}])
    assert error.field == "bboxes" and "one entry per frame (2" in str(error)
    error = error_of(gt, [{"video_id": 1, "score": 0.9, "bboxes": [None, [0, 0, math.inf, 4]],
                           "caption": "a cat"}])
    assert error.record == "predictions[0] frame 1" and error.field == "bbox"


def test_mask_errors_name_the_record():
    gt = gt_dict()
    for a in gt["annotations"]:
        a["segmentation"] = [[0, 0, 5, 0, 5, 5, 0, 5]]
    with pytest.raises(InputError) as info:
        chota(gt, [pred(segmentation={"size": [10, 10], "counts": "0550000000b1"})], iou="mask",
              caption_metrics=())
    assert info.value.field == "segmentation" and "differs from the video's" in str(info.value)
    with pytest.raises(InputError, match="needs a segmentation"):
        chota(gt, [pred(), pred(track_id=9, image_id=11, segmentation=[[0, 0, 5, 0, 5, 5]])],
              iou="mask", caption_metrics=())


def test_bad_options_are_explained():
    for options, text in [({"iou": "poly"}, "iou"), ({"alphas": [0.5, 2]}, "alphas"),
                          ({"caption_metrics": ("bleu",)}, "caption_metrics"),
                          ({"protocol": "mine"}, "protocol")]:
        with pytest.raises(InputError, match=text):
            chota(gt_dict(), [pred()], **options)


def test_line_breaks_in_captions_warn_and_still_score():
    with pytest.warns(UserWarning, match=r"predictions\[0\], field 'caption'"):
        result = chota(gt_dict(), [pred(caption="a red\ndog")], caption_metrics=("cider",))
    assert result.warnings and "line break" in result.warnings[0]


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(gt_dict()))
    bad = tmp_path / "pred.json"
    bad.write_text(json.dumps([pred(bbox=[0, 0, 5, math.nan])]).replace("NaN", "NaN"))
    assert main(["score", "--gt", str(gt), "--pred", str(bad), "--caption-metrics",
                 "cider", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "predictions[0]" in err[0] and "'bbox'" in err[0]


def test_ground_truth_without_any_caption_suggests_tracking_only():
    gt = gt_dict()
    for a in gt["annotations"]:
        del a["caption"]
    error = error_of(gt, [pred()])
    assert error.field == "caption" and "caption_metrics=()" in str(error)


def test_a_failed_run_stops_the_early_started_jvm(monkeypatch):
    """METEOR's JVM starts while predictions load; bad predictions must not leave it running."""
    import benchmark.captions as captions

    events = []

    class FakeMetrics:
        def __init__(self, metrics, **options):
            events.append(("start", metrics))

        def prestart(self, references=None):
            events.append(("prestart", None if references is None else sorted(references)))

        def close(self):
            events.append(("close",))

    monkeypatch.setattr(captions, "CaptionMetrics", FakeMetrics)
    with pytest.raises(InputError):
        chota(gt_dict(), [pred(score=math.nan)], caption_metrics=("cider", "meteor"))
    # Started before the ground truth loads (a fresh cache), checked again against its
    # references, and stopped when the predictions turn out bad.
    assert events == [("start", ("meteor",)), ("prestart", None), ("prestart", ["a red dog"]),
                      ("close",)]


def test_annotations_on_unknown_images_and_duplicate_images_are_named():
    gt = gt_dict()
    gt["annotations"][1]["image_id"] = 12
    with pytest.raises(InputError) as info:
        chota(gt, [pred()], caption_metrics=())
    assert (info.value.record, info.value.field) == ("annotations[1]", "image_id")
    empty = {"images": [], "annotations": [gt["annotations"][0]]}
    with pytest.raises(InputError, match="not an image of the ground truth"):
        chota(empty, [], caption_metrics=())
    gt = gt_dict()
    gt["images"].append({"id": 10, "video_id": 1, "frame_index": 2})
    with pytest.raises(InputError, match="duplicate image id 10") as info:
        chota(gt, [pred()], caption_metrics=())
    assert info.value.record == "images[2]"


def test_frames_are_scored_in_image_id_order_and_per_track_lists_follow_frame_index():
    # The reference sorts a video's image ids; frame_index is the display order. Here the two
    # disagree (ids 30, 10, 20 for frames 0, 1, 2).
    from benchmark import chota
    from benchmark.io import load_ground_truth

    images = [{"id": i, "video_id": 1, "frame_index": f, "width": 100, "height": 100}
              for i, f in ((30, 0), (10, 1), (20, 2))]
    boxes = {30: [0, 0, 10, 10], 10: [20, 20, 10, 10], 20: [40, 40, 10, 10]}
    gt = {"videos": [{"id": 1, "width": 100, "height": 100}], "images": images,
          "annotations": [{"id": k, "image_id": i, "track_id": 1, "category_id": 1, "bbox": boxes[i],
                           "caption": "a box"} for k, i in enumerate(boxes)],
          "categories": [{"id": 1, "name": "thing"}]}
    loaded = load_ground_truth(gt)
    frame_of = dict(zip(loaded.images.ids.tolist(), loaded.images.frame.tolist()))
    assert frame_of == {10: 0, 20: 1, 30: 2}
    # A per-track prediction lists its boxes in frame_index order: 30, 10, 20.
    per_track = [{"video_id": 1, "score": 0.9, "caption": "a box",
                  "bboxes": [boxes[30], boxes[10], boxes[20]]}]
    result = chota(gt, per_track, iou="box", caption_metrics=())
    assert (result["HOTA_TP"], result["HOTA_FP"], result["HOTA_FN"]) == (3, 0, 0)
    # The same video with a duplicated frame_index is refused, naming the field.
    images[2]["frame_index"] = 1
    with pytest.raises(InputError, match="frame_index"):
        load_ground_truth(gt)


def _one_box_case():
    images = [{"id": i, "video_id": 1, "frame_index": i, "width": 100, "height": 100} for i in (1, 2)]
    gt = {"videos": [{"id": 1, "width": 100, "height": 100}], "images": images,
          "annotations": [{"id": i, "image_id": i, "track_id": 5, "category_id": 1, "bbox": [10, 10, 20, 20],
                           "caption": "a box"} for i in (1, 2)],
          "categories": [{"id": 1, "name": "thing"}]}
    pred = [{"image_id": i, "track_id": 7, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9,
             "caption": "a box"} for i in (1, 2)]
    return gt, pred


def test_a_duplicate_below_the_score_threshold_is_filtered_first_as_the_reference():
    gt, pred = _one_box_case()
    low = dict(pred[0], score=0.3, bbox=[50, 50, 10, 10])
    result = chota(gt, pred + [low], iou="box", caption_metrics=())
    assert (result["HOTA_TP"], result["HOTA_FP"]) == (2, 0)
    # Kept by the threshold, the same duplicate is an error naming the record and the field.
    with pytest.raises(InputError, match=r"predictions\[2\].*track_id|duplicate detection") as err:
        chota(gt, pred + [dict(low, score=0.8)], iou="box", caption_metrics=())
    assert err.value.field == "track_id"
    assert chota(gt, pred + [dict(low, score=0.8)], iou="box", caption_metrics=(), score_threshold=0.85)["HOTA_TP"] == 2


def test_string_track_ids_are_accepted_as_the_reference_does():
    gt, pred = _one_box_case()
    as_int = chota(gt, pred, iou="box", caption_metrics=())
    gt_str = json.loads(json.dumps(gt))
    for ann in gt_str["annotations"]:
        ann["track_id"] = "person-5"
    pred_str = [dict(p, track_id="t7") for p in pred]
    as_str = chota(gt_str, pred_str, iou="box", caption_metrics=())
    assert as_str.to_dict() == as_int.to_dict()
    with pytest.raises(InputError, match="integer or a string") as err:
        chota(gt, [pred[0], dict(pred[1], track_id=7.5)], iou="box", caption_metrics=())
    assert err.value.field == "track_id"


def test_ids_beyond_64_bits_are_an_input_error():
    gt, pred = _one_box_case()
    with pytest.raises(InputError, match="64-bit") as err:
        chota(gt, [dict(pred[0], image_id=2**63), pred[1]], iou="box", caption_metrics=())
    assert err.value.field == "image_id"


def test_records_without_a_box_keep_their_place():
    """Mask-only records get NaN boxes; a bad box after them is named by its own record."""
    from benchmark.io import load_ground_truth, load_predictions

    gt = load_ground_truth(gt_dict())
    mask_only = pred(track_id=3, bbox=None, segmentation={"size": [20, 20], "counts": [400]})
    det = load_predictions([mask_only, pred(track_id=4, bbox=[1, 2, 3, 4])], gt)
    by_track = dict(zip(det.track.tolist(), det.boxes.tolist()))
    assert all(math.isnan(v) for v in by_track[3]) and by_track[4] == [1, 2, 3, 4]
    error = error_of(gt_dict(), [mask_only, pred(track_id=4), pred(track_id=5, bbox=[0, 0, -1, 1])])
    assert error.record == "predictions[2]" and "negative width" in str(error)
