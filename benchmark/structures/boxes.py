"""Axis-aligned boxes in ``[x, y, w, h]`` (absolute pixels) and their IoU.

The reference scorer loads boxes as float32 and keeps every step of the IoU in float32; a
float64 IoU moves a few pairs across an alpha threshold (see the protocol spec), so the
arithmetic below follows the reference's order of operations exactly.
"""

from __future__ import annotations

import numpy as np

_EPS = np.finfo("float").eps  # the reference compares against float64 machine epsilon


def _corners(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return x1, y1, x2, y2 computed in the boxes' own dtype (x2 = x + w, rounded there)."""
    x1, y1 = boxes[..., 0], boxes[..., 1]
    return x1, y1, x1 + boxes[..., 2], y1 + boxes[..., 3]


def paired_box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU of ``boxes1[i]`` with ``boxes2[i]`` for every i (xywh, float32 arithmetic).

    The element-wise form lets the scorer compute the IoU of every same-frame pair of a
    whole video in one vectorised pass; each value equals the corresponding entry of
    :func:`box_iou`.

    Example:
        >>> a = np.array([[0, 0, 2, 2]], np.float32); b = np.array([[1, 0, 2, 2]], np.float32)
        >>> float(paired_box_iou(a, b)[0])
        0.3333333432674408
    """
    boxes1 = np.asarray(boxes1, dtype=np.float32)
    boxes2 = np.asarray(boxes2, dtype=np.float32)
    ax1, ay1, ax2, ay2 = _corners(boxes1)
    bx1, by1, bx2, by2 = _corners(boxes2)
    inter_w = np.maximum(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), np.float32(0))
    inter_h = np.maximum(np.minimum(ay2, by2) - np.maximum(ay1, by1), np.float32(0))
    intersection = inter_w * inter_h
    area1 = (ax2 - ax1) * (ay2 - ay1)
    area2 = (bx2 - bx1) * (by2 - by1)
    union = area1 + area2 - intersection
    # Degenerate boxes and empty unions score 0, never NaN.
    intersection = np.where((area1 <= 0 + _EPS) | (area2 <= 0 + _EPS) | (union <= 0 + _EPS),
                            np.float32(0), intersection)
    union = np.where(union <= 0 + _EPS, np.float32(1), union)
    return (intersection / union).astype(np.float32, copy=False)


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """IoU matrix between two sets of xywh boxes, shape ``(len(boxes1), len(boxes2))``.

    Example:
        >>> box_iou(np.array([[0, 0, 2, 2]]), np.array([[0, 0, 2, 2], [2, 2, 1, 1]])).tolist()
        [[1.0, 0.0]]
    """
    boxes1 = np.asarray(boxes1, dtype=np.float32).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, dtype=np.float32).reshape(-1, 4)
    return paired_box_iou(boxes1[:, None, :], boxes2[None, :, :])
