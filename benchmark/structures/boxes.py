"""Axis-aligned boxes in ``[x, y, w, h]`` (absolute pixels) and their IoU.

The reference scorer loads boxes as float32 and keeps every step of the IoU in float32; a
float64 IoU moves a few pairs across an alpha threshold (see the protocol spec), and so does
another float32 formula (TrackEval's areas from the corners differ from the reference's
``w * h`` in the last bit for most real-valued boxes), so the arithmetic below follows the
reference's operations exactly.
"""

from __future__ import annotations

import numpy as np


def paired_box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of ``boxes1[i]`` with ``boxes2[i]`` for every i (xywh, float32 arithmetic).

    The reference's operations in the reference's order: areas are ``w * h`` (not the
    difference of the corners, which rounds differently in float32), the far corners are
    ``w + x``, the overlap is clipped at 0, and a pair whose union is not positive scores 0.
    The element-wise form lets the scorer compute the IoU of every same-frame pair of a whole
    video in one vectorised pass; each value equals the corresponding entry of
    :func:`box_iou`.

    Example:
        >>> a = np.array([[0, 0, 2, 2]], np.float32); b = np.array([[1, 0, 2, 2]], np.float32)
        >>> float(paired_box_iou(a, b)[0])
        0.3333333432674408
    """
    boxes1 = np.asarray(boxes1, dtype=np.float32)
    boxes2 = np.asarray(boxes2, dtype=np.float32)
    x1, y1, w1, h1 = (boxes1[..., k] for k in range(4))
    x2, y2, w2, h2 = (boxes2[..., k] for k in range(4))
    overlap_w = np.minimum(w1 + x1, w2 + x2) - np.maximum(x1, x2)
    overlap_h = np.minimum(h1 + y1, h2 + y2) - np.maximum(y1, y2)
    np.maximum(overlap_w, np.float32(0), out=overlap_w)
    np.maximum(overlap_h, np.float32(0), out=overlap_h)
    intersection = overlap_w * overlap_h
    union = w1 * h1 + w2 * h2 - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = intersection / union
    # 0 where the union is not positive, as the reference.
    iou[~(union > 0)] = 0
    return iou


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU matrix between two sets of xywh boxes, shape ``(len(boxes1), len(boxes2))``.

    Example:
        >>> box_iou(np.array([[0, 0, 2, 2]]), np.array([[0, 0, 2, 2], [2, 2, 1, 1]])).tolist()
        [[1.0, 0.0]]
    """
    boxes1 = np.asarray(boxes1, dtype=np.float32).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, dtype=np.float32).reshape(-1, 4)
    return paired_box_iou(boxes1[:, None, :], boxes2[None, :, :])
