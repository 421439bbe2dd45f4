"""Box and mask structures: hand-computed cases and agreement with trackeval / numpy."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.structures.boxes import box_iou, paired_box_iou
from benchmark.structures.masks import mask_iou, mask_to_box, to_rle


def test_box_iou_hand_computed():
    a = np.array([[0, 0, 4, 4]], np.float32)
    b = np.array([[2, 2, 4, 4], [4, 0, 1, 1], [0, 0, 4, 4], [1, 1, 0, 2]], np.float32)
    # overlap 2x2=4, union 16+16-4=28; touching edge 0; identical 1; zero-width box 0
    np.testing.assert_allclose(box_iou(a, b)[0], [4 / 28, 0.0, 1.0, 0.0], rtol=1e-7)


def test_box_iou_float32_bitwise_equal_to_trackeval():
    from trackeval.datasets._base_dataset import _BaseDataset

    rng = np.random.default_rng(1)
    a = rng.uniform(0, 500, (40, 4)).astype(np.float32)
    b = np.concatenate([a[:20] + rng.normal(0, 5, (20, 4)).astype(np.float32),
                        rng.uniform(0, 500, (20, 4)).astype(np.float32)])
    b[:, 2:] = np.abs(b[:, 2:])
    ref = _BaseDataset._calculate_box_ious(a, b, box_format="xywh")
    ours = box_iou(a, b)
    assert ours.dtype == np.float32 and ref.dtype == np.float32
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(paired_box_iou(a[:5], b[:5]), np.diag(ref[:5, :5]))


def _square(h, w, y0, x0, size):
    m = np.zeros((h, w), np.uint8)
    m[y0:y0 + size, x0:x0 + size] = 1
    return m


def test_all_mask_encodings_give_the_same_mask():
    dense = _square(10, 12, 2, 3, 4)
    compressed = mask_utils.encode(np.asfortranarray(dense))
    as_str = {"size": [10, 12], "counts": compressed["counts"].decode()}
    # uncompressed RLE: column-major run lengths starting with zeros
    flat = dense.flatten(order="F")
    runs, value, count = [], 0, 0
    for px in flat:
        if px == value:
            count += 1
        else:
            runs.append(count); value, count = px, 1
    runs.append(count)
    uncompressed = {"size": [10, 12], "counts": [int(r) for r in runs]}
    polygon = [[3, 2, 7, 2, 7, 6, 3, 6]]
    for seg in (compressed, as_str, uncompressed):
        np.testing.assert_array_equal(mask_utils.decode(to_rle(seg)), dense)
    # The 4x4 polygon rasterises (pycocotools' half-open convention) to the same square.
    np.testing.assert_array_equal(mask_utils.decode(to_rle(polygon, 10, 12)), dense)
    # Several polygons of one object are merged into one mask (4x4 square + 1 pixel).
    two = to_rle(polygon + [[0, 0, 1, 0, 1, 1, 0, 1]], 10, 12)
    assert int(mask_utils.area(two)) == 17


@pytest.mark.parametrize("bad, message", [
    ({"size": [4, 4]}, "both"),
    ({"size": [4], "counts": "abc"}, "size"),
    ({"size": [2, 2], "counts": [1, 2]}, "covers 3 pixels"),
    ([[0, 0, 1]], "at least 3"),
    ("zzz", "RLE dict or a polygon"),
    ([], "empty polygon list"),
    # JSON true/false are Python ints: never a coordinate, a run length or a size.
    ([[0, 0, 1, 0, True, 1]], "at least 3"),
    ({"size": [2, 2], "counts": [1, True, 2]}, "non-negative integers"),
    ({"size": [True, 4], "counts": "abc"}, "size"),
])
def test_bad_segmentations_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        to_rle(bad, 4, 4)


def test_mask_iou_matches_numpy():
    rng = np.random.default_rng(0)
    masks = [(rng.random((16, 20)) > 0.5).astype(np.uint8) for _ in range(5)]
    rles = [mask_utils.encode(np.asfortranarray(m)) for m in masks]
    ious = mask_iou(rles[:2], rles[2:])
    for i in range(2):
        for j in range(3):
            a, b = masks[i].astype(bool), masks[2 + j].astype(bool)
            assert ious[i, j] == pytest.approx((a & b).sum() / (a | b).sum(), rel=1e-12)
    assert mask_iou([], rles).shape == (0, 5)
    np.testing.assert_array_equal(mask_to_box(to_rle(_square_rle())), [3, 2, 4, 4])


def _square_rle():
    return mask_utils.encode(np.asfortranarray(_square(10, 12, 2, 3, 4)))
