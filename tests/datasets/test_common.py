"""Shared converter mechanics: the four mask encodings, boxes from masks, atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.datasets.common import (
    GroundTruthBuilder,
    load_json,
    posix_path,
    rle_area,
    rle_bbox,
    to_rle,
)
from benchmark.errors import InputError

# 4x4 frame; pixels (row 1..2, column 1..2) set.
SQUARE = np.zeros((4, 4), dtype=np.uint8)
SQUARE[1:3, 1:3] = 1


def decode(rle: dict) -> np.ndarray:
    return mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()})


def convert(seg: object) -> dict | None:
    return to_rle(seg, 4, 4, source="f.json", record_id=7, field="segmentations[0]")


def test_four_encodings_give_the_same_mask() -> None:
    # Column-major runs: 5 background, 2 set (rows 1-2 of column 1), 2 bg, 2 set, 5 bg.
    uncompressed = {"size": [4, 4], "counts": [5, 2, 2, 2, 5]}
    polygon = [[0.5, 0.5, 2.5, 0.5, 2.5, 2.5, 0.5, 2.5]]  # pixel centres 1 and 2 inside
    compressed = convert(uncompressed)
    assert convert(None) is None
    for seg in (uncompressed, polygon, compressed):
        rle = convert(seg)
        assert isinstance(rle["counts"], str)
        assert np.array_equal(decode(rle), SQUARE)
        assert rle_bbox(rle) == [1.0, 1.0, 2.0, 2.0]
        assert rle_area(rle) == 4.0


def test_two_polygons_merge_into_one_mask() -> None:
    rle = convert([[0.5, 0.5, 1.5, 0.5, 1.5, 1.5, 0.5, 1.5], [2.5, 2.5, 3.5, 2.5, 3.5, 3.5,
                                                              2.5, 3.5]])
    mask = decode(rle)
    assert mask.sum() == 2 and mask[1, 1] == 1 and mask[3, 3] == 1  # one pixel each
    assert rle_bbox(rle) == [1.0, 1.0, 3.0, 3.0]


@pytest.mark.parametrize("seg, message", [
    ({"size": [4, 4], "counts": [5, 2, 2]}, "sum to 9"),
    ({"size": [3, 4], "counts": "525"}, "differs from the frame size"),
    ({"size": [4, 4], "counts": 12}, "string or a list"),
    ([[1, 2, 3]], "at least 3"),
    ([], "empty polygon list"),
    ("abc", "unknown segmentation encoding"),
])
def test_bad_masks_name_file_record_field(seg: object, message: str) -> None:
    with pytest.raises(InputError) as err:
        convert(seg)
    assert str(err.value).startswith("f.json: record 7, field 'segmentations[0]': ")
    assert message in str(err.value)


def test_posix_path() -> None:
    assert posix_path("JPEGImages\\val\\00001\\00000.jpg") == "JPEGImages/val/00001/00000.jpg"


def test_load_json_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"videos": [1, }')
    with pytest.raises(InputError, match=r"bad.json: not valid JSON \(line 1"):
        load_json(bad)
    with pytest.raises(InputError, match="file not found"):
        load_json(tmp_path / "missing.json")


def test_builder_refuses_duplicate_ids() -> None:
    builder = GroundTruthBuilder(categories=[{"id": 1, "name": "x"}])
    builder.add_video(name="a", height=2, width=2, file_names=["0.jpg"], video_id=1,
                      image_ids=[10])
    with pytest.raises(InputError, match="video id 1 used twice"):
        builder.add_video(name="b", height=2, width=2, file_names=["0.jpg"], video_id=1)
    with pytest.raises(InputError, match="image id 10 used twice"):
        builder.add_video(name="c", height=2, width=2, file_names=["0.jpg"], video_id=2,
                          image_ids=[10])
    with pytest.raises(InputError, match="category 5"):
        builder.add_annotation(image_id=10, track_id=1, category_id=5, bbox=[0, 0, 1, 1])
