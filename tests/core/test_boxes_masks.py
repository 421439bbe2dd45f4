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


def _reference_box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The reference scorer's box IoU, transcribed operation by operation (float32 inputs):
    areas w * h, far corners w + x, overlap clipped at 0, 0 where the union is not positive."""
    area1, area2 = a[:, 2] * a[:, 3], b[:, 2] * b[:, 3]
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:] + a[:, None, :2], b[None, :, 2:] + b[None, :, :2])
    wh = (rb - lt).clip(0.0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0).astype(np.float32)


def test_box_iou_bitwise_equal_to_the_reference_arithmetic():
    # Real-valued boxes on a 1280x720 frame: most pairs differ in the last bit between
    # w * h areas and areas from the corners, so only the reference's own order is exact.
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, [1280, 720], (300, 2))
    wh = rng.uniform(5, 400, (300, 2))
    a = np.concatenate([xy, wh], axis=1).astype(np.float32)
    b = (a + rng.normal(0, 8, a.shape)).astype(np.float32)
    b[:, 2:] = np.abs(b[:, 2:])
    ours = box_iou(a, b)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, _reference_box_iou(a, b))
    np.testing.assert_array_equal(paired_box_iou(a, b), np.diag(_reference_box_iou(a, b)))


def test_box_iou_agrees_with_trackeval_to_float32_rounding():
    from trackeval.datasets._base_dataset import _BaseDataset

    rng = np.random.default_rng(1)
    a = rng.uniform(0, 500, (40, 4)).astype(np.float32)
    b = np.concatenate([a[:20] + rng.normal(0, 5, (20, 4)).astype(np.float32),
                        rng.uniform(0, 500, (20, 4)).astype(np.float32)])
    b[:, 2:] = np.abs(b[:, 2:])
    ref = _BaseDataset._calculate_box_ious(a, b, box_format="xywh")
    np.testing.assert_allclose(box_iou(a, b), ref, rtol=2e-6, atol=1e-7)


def test_an_iou_at_the_alpha_follows_the_reference_rounding():
    # The reference's float32 IoU of this pair is exactly 0.5 (a true positive at alpha 0.5);
    # areas from the corners give 0.49999994 (no match).
    from benchmark import chota

    gt_box = [33.585575103759766, 457.35107421875, 146.2277374267578, 189.81394958496094]
    pred_box = [82.32815551757812, 457.35107421875, 146.2277374267578, 189.81394958496094]
    assert _reference_box_iou(np.array([gt_box], np.float32), np.array([pred_box], np.float32))[0, 0] == 0.5
    gt = {"videos": [{"id": 1, "width": 1280, "height": 720}],
          "images": [{"id": 1, "video_id": 1, "frame_index": 0, "width": 1280, "height": 720}],
          "annotations": [{"id": 1, "image_id": 1, "track_id": 1, "category_id": 1, "bbox": gt_box,
                           "caption": "a box"}],
          "categories": [{"id": 1, "name": "thing"}]}
    pred = [{"image_id": 1, "track_id": 1, "category_id": 1, "bbox": pred_box, "score": 0.9, "caption": "a box"}]
    assert chota(gt, pred, iou="box", caption_metrics=())["HOTA_TP"] == 1


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
