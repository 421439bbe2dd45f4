"""Instance masks: every accepted encoding to compressed RLE, IoU and boxes via pycocotools.

Accepted encodings (COCO / YouTube-VIS): compressed RLE (``counts`` a string or bytes),
uncompressed RLE (``counts`` a list of run lengths) and polygons (a list of flat
``[x1, y1, x2, y2, ...]`` lists, which need the image size).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

RLE = dict  # {"size": [h, w], "counts": bytes}
_MAX_SIDE = 2**31 - 1  # pycocotools keeps heights and widths in 32-bit integers


def _is_number(value: Any) -> bool:
    # JSON true/false are Python ints; they are never a coordinate or a run length.
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    """Whether a number is finite as a float (a JSON integer like 10**400 is not)."""
    try:
        return np.isfinite(float(value))
    except OverflowError:
        return False


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def to_rle(segmentation: Any, height: int | None = None, width: int | None = None) -> RLE:
    """Convert one segmentation to compressed RLE with ``bytes`` counts (pycocotools' form).

    This function owns the encoding rules of the package (the dataset converters wrap it).
    Raises ValueError (with what is wrong) for anything that is not a valid encoding; the
    loaders wrap it with the file, record and field. Compressed counts are not decoded here
    (the scorer would pay one decode per mask); :func:`benchmark.datasets.common.to_rle`
    does that when converting files.

    Example:
        >>> rle = to_rle([[0, 0, 4, 0, 4, 4, 0, 4]], height=8, width=8)
        >>> int(mask_utils.area(rle))
        16
        >>> to_rle({"size": [2, 2], "counts": "121"})
        {'size': [2, 2], 'counts': b'121'}
        >>> to_rle({"size": [2, 2], "counts": "1\\ud8001"})
        Traceback (most recent call last):
        ...
        ValueError: compressed RLE 'counts' must be ASCII text, got '\\ud800' at position 1
    """
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            raise ValueError("an RLE needs both 'size' and 'counts'")
        size = segmentation["size"]
        if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(map(_is_count, size)):
            raise ValueError(f"RLE 'size' must be [height, width] integers, got {size!r}")
        if max(size) > _MAX_SIDE:
            raise ValueError(f"RLE 'size' {list(size)} is beyond {_MAX_SIDE} pixels a side "
                             "(pycocotools' 32-bit sizes)")
        counts = segmentation["counts"]
        if isinstance(counts, str):
            if not counts.isascii():
                bad = next(i for i, c in enumerate(counts) if not c.isascii())
                raise ValueError(f"compressed RLE 'counts' must be ASCII text, got "
                                 f"{counts[bad]!r} at position {bad}")
            return {"size": [size[0], size[1]], "counts": counts.encode("ascii")}
        if isinstance(counts, bytes):
            return {"size": [size[0], size[1]], "counts": counts}
        if isinstance(counts, list):
            if not all(map(_is_count, counts)):
                raise ValueError("uncompressed RLE 'counts' must be non-negative integers")
            if sum(counts) != size[0] * size[1]:
                raise ValueError(f"uncompressed RLE covers {sum(counts)} pixels (counts sum to "
                                 f"{sum(counts)}), size {list(size)} has {size[0] * size[1]}")
            return mask_utils.frPyObjects(segmentation, size[0], size[1])
        raise ValueError(f"RLE 'counts' must be a string or a list, got {type(counts).__name__}")
    if isinstance(segmentation, list):
        if height is None or width is None:
            raise ValueError("a polygon needs the image height and width")
        if not segmentation:
            raise ValueError("empty polygon list (use null for an absent object)")
        if not all(isinstance(p, list) for p in segmentation):
            raise ValueError("a polygon segmentation must be a non-empty list of coordinate lists")
        for poly in segmentation:
            if len(poly) < 6 or len(poly) % 2 or not all(
                    _is_number(v) and _is_finite(v) for v in poly):
                raise ValueError("each polygon needs at least 3 finite (x, y) number pairs")
            # pycocotools rasterises every edge point by point (and overflows its integers
            # far out): keep vertices within one image size of the image.
            xs, ys = poly[0::2], poly[1::2]
            if not (-width <= min(xs) and max(xs) <= 2 * width
                    and -height <= min(ys) and max(ys) <= 2 * height):
                raise ValueError(f"polygon vertices must lie within one image size of the "
                                 f"{width}x{height} image (x in [{-width}, {2 * width}], "
                                 f"y in [{-height}, {2 * height}]), got x from {min(xs)!r} to "
                                 f"{max(xs)!r}, y from {min(ys)!r} to {max(ys)!r}")
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    raise ValueError(f"unknown segmentation encoding: expected an RLE dict or a polygon list, "
                     f"got {type(segmentation).__name__}")


def mask_iou(masks1: list[RLE], masks2: list[RLE]) -> np.ndarray:
    """IoU matrix (float64) between two lists of compressed RLEs of the same image size.

    Example:
        >>> a = to_rle([[0, 0, 4, 0, 4, 4, 0, 4]], 8, 8); b = to_rle([[0, 0, 4, 0, 4, 2, 0, 2]], 8, 8)
        >>> mask_iou([a], [b]).tolist()
        [[0.5]]
    """
    if not masks1 or not masks2:
        return np.zeros((len(masks1), len(masks2)), dtype=np.float64)
    ious = mask_utils.iou(masks1, masks2, [False] * len(masks2))
    return np.asarray(ious, dtype=np.float64).reshape(len(masks1), len(masks2))


def mask_to_box(rle: RLE) -> np.ndarray:
    """Tight xywh box (float32) of a compressed RLE; all zeros for an empty mask."""
    return np.asarray(mask_utils.toBbox(rle), dtype=np.float32)


def mask_area(rle: RLE) -> float:
    """Pixel count of a compressed RLE (``bytes`` counts, as :func:`to_rle` returns).

    Example:
        >>> mask_area(to_rle([[0, 0, 4, 0, 4, 4, 0, 4]], 8, 8))
        16.0
    """
    return float(mask_utils.area(rle))
