"""Issue 12: lone surrogates, deep nesting, huge numbers and frame_index layouts are input
errors (or warnings) naming the file, the record and the field, never a traceback."""

from __future__ import annotations

import json
import warnings

import pytest

from benchmark import chota
from benchmark.errors import InputError
from benchmark.io import load_ground_truth, load_predictions, read_json
from benchmark.structures.masks import to_rle


def gt_dict(masks=False):
    seg = {"segmentation": {"size": [2, 2], "counts": "04"}} if masks else {}
    return {
        "videos": [{"id": 1, "name": "v1", "height": 2, "width": 2}],
        "images": [{"id": 10, "video_id": 1, "frame_index": 0},
                   {"id": 11, "video_id": 1, "frame_index": 1}],
        "annotations": [
            {"image_id": 10, "track_id": 1, "bbox": [0, 0, 1, 1], "caption": "a dog", **seg},
            {"image_id": 11, "track_id": 1, "bbox": [0, 0, 1, 1], "caption": "a dog", **seg},
        ],
    }


def pred(**overrides):
    record = {"image_id": 10, "track_id": 7, "bbox": [0, 0, 1, 1], "score": 0.9,
              "caption": "a dog"}
    record.update(overrides)
    return record


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="ascii")
    return str(path)


# ---------------------------------------------------------------- lone surrogates

@pytest.mark.parametrize("metrics", [("cider",), ("meteor",)])
def test_lone_surrogate_in_a_predicted_caption_names_record_and_field(tmp_path, metrics):
    # JSON "\ud800" parses to a lone surrogate, which UTF-8 (SQLite, the JVM) cannot encode.
    path = write(tmp_path, "pred.json", json.dumps([pred(), pred(image_id=11,
                                                                caption="a \ud800 dog")]))
    with pytest.raises(InputError, match=r"pred.json: record predictions\[1\], field 'caption': "
                                         r"is not valid Unicode: '\\ud800' at position 2"):
        chota(gt_dict(), path, iou="box", caption_metrics=metrics)


def test_lone_surrogate_in_a_ground_truth_caption_names_record_and_field():
    gt = gt_dict()
    gt["annotations"][1]["caption"] = "\udfff"
    with pytest.raises(InputError, match=r"record annotations\[1\], field 'caption': "
                                         r"is not valid Unicode"):
        load_ground_truth(gt)


def test_lone_surrogate_in_a_video_name_or_string_track_id_is_named(tmp_path):
    # Video names key the per-video CSV and JSON; UTF-8 outputs cannot hold a lone surrogate.
    gt = gt_dict()
    gt["videos"][0]["name"] = "v\ud800"
    with pytest.raises(InputError, match=r"record videos\[0\], field 'name': is not valid Unicode"):
        load_ground_truth(gt)
    gt = gt_dict()
    for a, t in zip(gt["annotations"], ("a", "b\udc80")):
        a["track_id"] = t
    with pytest.raises(InputError, match=r"record annotations\[1\], field 'track_id': is not valid"):
        load_ground_truth(gt)
    with pytest.raises(InputError, match=r"record predictions\[0\], field 'track_id': is not valid"):
        chota(gt_dict(), [pred(track_id="\ud800")], caption_metrics=("cider",))


def test_lone_surrogate_in_a_per_track_caption_names_record():
    gt = load_ground_truth(gt_dict())
    records = [{"video_id": 1, "bboxes": [[0, 0, 1, 1], None], "score": 0.9,
                "caption": "ok"},
               {"video_id": 1, "bboxes": [None, [0, 0, 1, 1]], "score": 0.9,
                "caption": "x\ud800"}]
    with pytest.raises(InputError, match=r"record predictions\[1\], field 'caption'"):
        load_predictions(records, gt)


def test_lone_surrogate_in_rle_counts_names_record_and_field(tmp_path):
    path = write(tmp_path, "pred.json", json.dumps([
        pred(segmentation={"size": [2, 2], "counts": "04"}),
        pred(image_id=11, segmentation={"size": [2, 2], "counts": "0\ud8004"})]))
    for iou in ("mask", "box"):  # refused when read, whatever the IoU
        with pytest.raises(InputError, match=r"pred.json: record predictions\[1\], field "
                                             r"'segmentation': compressed RLE 'counts' must be "
                                             r"ASCII text, got '\\ud800' at position 1"):
            chota(gt_dict(masks=True), path, iou=iou, caption_metrics=("cider",))


def test_to_rle_refuses_non_ascii_counts_with_a_value_error():
    for counts in ("0\ud8004", "0\u00e94"):
        with pytest.raises(ValueError, match="must be ASCII text"):
            to_rle({"size": [2, 2], "counts": counts})
    # UnicodeEncodeError is a ValueError too: the message must be ours, not the codec's.
    with pytest.raises(ValueError) as info:
        to_rle({"size": [2, 2], "counts": "\ud800"})
    assert not isinstance(info.value, UnicodeError)


# ---------------------------------------------------------------- deep nesting

@pytest.mark.parametrize("depth", [5_000, 200_000])
def test_deeply_nested_json_file_is_an_input_error(tmp_path, depth):
    path = write(tmp_path, "deep.json", "[" * depth + "]" * depth)
    with pytest.raises(InputError, match=r"deep.json: JSON nested too deeply"):
        read_json(path, what="predictions")
    with pytest.raises(InputError, match=r"deep.json: JSON nested too deeply"):
        chota(gt_dict(), path, iou="box", caption_metrics=("cider",))


# ---------------------------------------------------------------- numbers

BIG_INT = "1" + "0" * 400  # a JSON integer beyond float64: Python int, OverflowError in numpy
MARK = 12345.678


def json_with(obj, text):
    """``obj`` as JSON with the number MARK written as ``text`` (1e400, 10**400, ...)."""
    return json.dumps(obj).replace(repr(MARK), text)


@pytest.mark.parametrize("text", ["1e300", "-1e300", "1e39", BIG_INT, "-" + BIG_INT, "1e400"])
@pytest.mark.parametrize("slot", [0, 2, 3])
def test_box_values_beyond_float32_name_record_and_field(tmp_path, text, slot):
    box = [0, 0, 1, 1]
    box[slot] = MARK
    path = write(tmp_path, "pred.json", json_with([pred(), pred(image_id=11, bbox=box)], text))
    if text.startswith("-") and slot >= 2:
        message = r"has a negative width or height|has a NaN or infinite value"
    else:
        message = r"is beyond float32's range|has a NaN or infinite value"
    with pytest.raises(InputError, match=r"pred.json: record predictions\[1\], field 'bbox': "
                                         rf"({message})"):
        chota(gt_dict(), path, iou="box", caption_metrics=("cider",))


def test_box_whose_corner_or_area_overflows_float32_is_refused(tmp_path):
    for box in ([3e38, 0, 3e38, 1], [0, 0, 1e20, 1e20]):
        with pytest.raises(InputError, match=r"record predictions\[1\], field 'bbox': is "
                                             r"beyond float32's range"):
            chota(gt_dict(), [pred(), pred(image_id=11, bbox=box)], iou="box",
                  caption_metrics=("cider",))
    # Large but representable boxes are scored as given.
    chota(gt_dict(), [pred(), pred(image_id=11, bbox=[3e38, 0, 1, 1])], iou="box",
          caption_metrics=("cider",))


def test_ground_truth_and_per_track_boxes_beyond_float32(tmp_path):
    gt = gt_dict()
    gt["annotations"][1]["bbox"] = [0, 0, MARK, 1]
    path = write(tmp_path, "gt.json", json_with(gt, BIG_INT))
    with pytest.raises(InputError, match=r"gt.json: record annotations\[1\], field 'bbox': "
                                         r"has a NaN or infinite value"):
        load_ground_truth(path)
    records = [{"video_id": 1, "bboxes": [None, [0, 0, 1e300, 1]], "score": 0.9,
                "caption": "a dog"}]
    with pytest.raises(InputError, match=r"record predictions\[0\] frame 1, field 'bbox': is "
                                         r"beyond float32's range"):
        load_predictions(records, load_ground_truth(gt_dict()))


@pytest.mark.parametrize("text", [BIG_INT, "-" + BIG_INT, "1e400"])
def test_scores_beyond_float64_name_record_and_field(tmp_path, text):
    path = write(tmp_path, "pred.json", json_with([pred(), pred(image_id=11, score=MARK)], text))
    with pytest.raises(InputError, match=r"pred.json: record predictions\[1\], field 'score': "
                                         r"must be a finite number"):
        chota(gt_dict(), path, iou="box", caption_metrics=("cider",))


@pytest.mark.parametrize("key", ["height", "width"])
@pytest.mark.parametrize("text", [BIG_INT, "1e300", "1e400", "-2", "2.5", '"720"'])
def test_video_sizes_must_be_bounded_integers(tmp_path, key, text):
    gt = gt_dict()
    gt["videos"][0][key] = MARK
    path = write(tmp_path, "gt.json", json_with(gt, text))
    with pytest.raises(InputError, match=rf"gt.json: record videos\[0\] \(id 1\), field "
                                         rf"'{key}': must be a non-negative integer"):
        load_ground_truth(path)


def test_image_size_beyond_32_bits_names_the_image(tmp_path):
    gt = gt_dict()
    del gt["videos"][0]["height"]
    gt["images"][1]["height"] = MARK
    path = write(tmp_path, "gt.json", json_with(gt, BIG_INT))
    with pytest.raises(InputError, match=r"record images\[1\] \(id 11\), field 'height'"):
        load_ground_truth(path)
    gt["images"][1]["height"] = 720
    assert load_ground_truth(gt).heights.tolist() == [720]
    gt["videos"][0]["height"] = 720.0  # integral floats in the video table stay accepted
    assert load_ground_truth(gt).heights.tolist() == [720]


def test_per_track_ids_and_lengths_beyond_their_range(tmp_path):
    gt = {"videos": [{"id": 1, "length": 2}],
          "annotations": [{"video_id": 1, "id": MARK, "bboxes": [[0, 0, 1, 1], None],
                           "caption": "a dog"}]}
    path = write(tmp_path, "gt.json", json_with(gt, BIG_INT))
    with pytest.raises(InputError, match=r"record annotations\[0\], field 'id': must be a "
                                         r"64-bit integer"):
        load_ground_truth(path)
    gt["annotations"][0]["id"] = 1
    gt["videos"][0]["length"] = MARK
    path = write(tmp_path, "gt.json", json_with(gt, BIG_INT))
    with pytest.raises(InputError, match=r"record videos\[0\] \(id 1\), field 'length'"):
        load_ground_truth(path)


@pytest.mark.parametrize("text", ["1e300", BIG_INT, "1e400"])
def test_polygon_coordinates_far_outside_the_image_are_refused(tmp_path, text):
    # pycocotools rasterises polygons edge point by edge point: 1e300 crashed the process.
    gt = gt_dict()
    gt["annotations"][1]["segmentation"] = [[0, 0, 1, 0, MARK, 1]]
    gt["annotations"][0]["segmentation"] = [[0, 0, 1, 0, 1, 1]]
    path = write(tmp_path, "gt.json", json_with(gt, text))
    with pytest.raises(InputError, match=r"gt.json: record annotations\[1\], field "
                                         r"'segmentation': (polygon vertices must lie within|"
                                         r"each polygon needs)"):
        chota(path, [pred(segmentation=[[0, 0, 1, 0, 1, 1]])], iou="mask",
              caption_metrics=("cider",))


def test_rle_size_beyond_32_bits_is_refused():
    with pytest.raises(ValueError, match=r"RLE 'size' \[4294967296, 1\] is beyond"):
        to_rle({"size": [2**32, 1], "counts": [2**32]})


# ---------------------------------------------------------------- frame_index layouts

def test_frame_index_on_only_some_images_names_the_first_image_without_one():
    gt = gt_dict()
    gt["images"].append({"id": 12, "video_id": 1})
    gt["images"].append({"id": 13, "video_id": 1})
    with pytest.raises(InputError, match=r"record images\[2\] \(id 12\), field 'frame_index': "
                                         r"missing field, which 2 of the 4 images have"):
        load_ground_truth(gt)
    del gt["images"][0]["frame_index"]  # the first image lacks it, the others have it
    with pytest.raises(InputError, match=r"record images\[0\] \(id 10\), field 'frame_index'"):
        load_ground_truth(gt)


def test_frame_index_on_no_image_is_fine_and_silent():
    gt = gt_dict()
    for image in gt["images"]:
        del image["frame_index"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_ground_truth(gt).num_frames.tolist() == [2]


def test_gaps_in_frame_index_warn_naming_the_video_and_a_missing_value(tmp_path):
    gt = gt_dict()
    gt["videos"].append({"id": 2, "name": "v2", "height": 2, "width": 2})
    gt["images"] += [{"id": 20, "video_id": 2, "frame_index": 5},
                     {"id": 21, "video_id": 2, "frame_index": 9},
                     {"id": 22, "video_id": 2, "frame_index": 7}]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    with pytest.warns(UserWarning, match=r"gt.json: field 'frame_index': 1 of 2 videos have "
                                         r"gaps in frame_index, first video 2 \(3 images over "
                                         r"frame_index 5 to 9, 6 is missing\)"):
        loaded = load_ground_truth(str(path))
    # Scoring is unaffected: frames in image-id order, display order by frame_index.
    assert loaded.num_frames.tolist() == [2, 3]
    assert loaded.frame_at_position[1].tolist() == [0, 2, 1]


def test_consecutive_frame_index_not_starting_at_zero_is_silent():
    gt = gt_dict()
    gt["images"][0]["frame_index"], gt["images"][1]["frame_index"] = 101, 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_ground_truth(gt).frame_at_position[0].tolist() == [1, 0]


@pytest.mark.parametrize("value", ["x" * 10**6, 10**4000, list(range(10**5)), "nested"])
def test_huge_or_deep_values_are_cut_short_in_messages(value):
    if value == "nested":
        value = []
        for _ in range(5000):
            value = [value]
    # (a string, however long, is a valid track id)
    for field in ("score", "video_id") + (() if isinstance(value, str) else ("track_id",)):
        with pytest.raises(InputError, match=f"field '{field}'") as info:
            chota(gt_dict(), [pred(**{field: value})], caption_metrics=("cider",))
        assert len(str(info.value)) < 400, str(info.value)[:400]
