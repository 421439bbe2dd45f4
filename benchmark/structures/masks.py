"""Instance masks: every accepted encoding to compressed RLE, IoU and boxes via pycocotools.

Accepted encodings (COCO / YouTube-VIS): compressed RLE (``counts`` a string or bytes),
uncompressed RLE (``counts`` a list of run lengths) and polygons (a list of flat
``[x1, y1, x2, y2, ...]`` lists, which need the image size).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from benchmark.errors import shown

RLE = dict  # {"size": [h, w], "counts": bytes}
_MAX_SIDE = 2**31 - 1  # pycocotools keeps heights and widths in 32-bit integers
_MAX_COUNT = 2**32 - 1  # and run lengths in 32-bit unsigned integers
# pycocotools decodes each run length from up to 6 characters of 5 bits in C ``int``
# arithmetic; a longer group overflows it, and no mask of a real image needs one.
_MAX_GROUP = 6
_CHECK_CHUNK = 1 << 16  # characters decoded at once by check_compressed_rles


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
    loaders wrap it with the file, record and field. Compressed counts are decoded and
    checked (:func:`check_compressed_rles`), as pycocotools trusts them.

    Example:
        >>> rle = to_rle([[0, 0, 4, 0, 4, 4, 0, 4]], height=8, width=8)
        >>> int(mask_utils.area(rle))
        16
        >>> to_rle({"size": [2, 2], "counts": "121"})
        {'size': [2, 2], 'counts': b'121'}
        >>> to_rle({"size": [2, 2], "counts": "0T"})
        Traceback (most recent call last):
        ...
        ValueError: compressed RLE 'counts' of size [2, 2]: the string stops inside a run length
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
            raise ValueError(f"RLE 'size' must be [height, width] integers, got {shown(size)}")
        if max(size) > _MAX_SIDE:
            raise ValueError(f"RLE 'size' {list(size)} is beyond {_MAX_SIDE} pixels a side "
                             "(pycocotools' 32-bit sizes)")
        counts = segmentation["counts"]
        if isinstance(counts, (str, bytes)):
            if isinstance(counts, str):
                if not counts.isascii():
                    bad = next(i for i, c in enumerate(counts) if not c.isascii())
                    raise ValueError(f"compressed RLE 'counts' must be ASCII text, got "
                                     f"{shown(counts[bad])} at position {bad}")
                counts = counts.encode("ascii")
            reason = check_compressed_rles([counts], [size[0] * size[1]])[0]
            if reason is not None:
                raise ValueError(f"compressed RLE 'counts' of size {list(size)}: {reason}")
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
                                 f"y in [{-height}, {2 * height}]), got x from {shown(min(xs))} to "
                                 f"{shown(max(xs))}, y from {shown(min(ys))} to {shown(max(ys))}")
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    raise ValueError(f"unknown segmentation encoding: expected an RLE dict or a polygon list, "
                     f"got {type(segmentation).__name__}")


def check_compressed_rles(counts: Sequence[str | bytes], areas: Sequence[int]) -> list[str | None]:
    """Decode compressed RLE strings (all at once, in numpy) and say what is wrong with each.

    pycocotools trusts these strings: a run length that decodes negative, a string that stops
    inside a number, or runs that do not add up to height x width make its IoU read past the
    buffer or loop forever. Each string here decodes as pycocotools' ``rleFrString`` decodes
    it; a valid one uses the characters '0' to 'o', ends every number, and gives run lengths
    that are non-negative and sum to the mask's area (``areas[i]`` = height x width). The
    answer holds ``None`` for a valid string and the reason otherwise.

    Example:
        >>> check_compressed_rles([b"121", "0TS<", "!!!!~~~~", b"12"], [4, 4, 4, 4])
        [None, 'run lengths sum to 12388 pixels, the mask has 4', "character '!' at position 0 is not in a compressed RLE ('0' to 'o')", 'run lengths sum to 3 pixels, the mask has 4']
    """
    reasons: list[str | None] = [None] * len(counts)
    start = 0
    while start < len(counts):  # chunks bound the temporaries of huge files
        stop, size = start, 0
        while stop < len(counts) and (stop == start or size + len(counts[stop]) <= _CHECK_CHUNK):
            size += len(counts[stop])
            stop += 1
        reasons[start:stop] = _check_chunk(counts[start:stop], areas[start:stop])
        start = stop
    return reasons


def _check_chunk(counts: Sequence[str | bytes], areas: Sequence[int]) -> list[str | None]:
    n = len(counts)
    reasons: list[str | None] = [None] * n

    def fail(strings: np.ndarray, why) -> None:
        if len(strings) == 0:
            return
        for i in np.unique(strings).tolist():
            if reasons[i] is None:
                reasons[i] = why(i)

    joined = "".join(counts) if all(type(c) is str for c in counts) else None
    if joined is not None and joined.isascii():
        text = joined.encode("ascii")  # as parsed from JSON: one join, one encode
    else:
        counts = list(counts)
        for i, c in enumerate(counts):
            if not c.isascii():  # named here, where positions are the caller's characters
                k, char = next((k, ch) for k, ch in enumerate(c if isinstance(c, str) else
                                                              c.decode("latin-1")) if ord(ch) > 127)
                reasons[i] = (f"character {shown(char)} at position {k} is not in a compressed "
                              "RLE ('0' to 'o')")
                counts[i] = b""
        text = b"".join(c if isinstance(c, bytes) else c.encode("ascii") for c in counts)
    lengths = np.fromiter(map(len, counts), dtype=np.int64, count=n)
    string_end = np.cumsum(lengths)
    string_start = string_end - lengths
    digits = np.frombuffer(text, dtype=np.uint8) - np.uint8(48)  # below '0' wraps past 63
    if (digits > 63).any():
        bad = np.flatnonzero(digits > 63)
        owner = np.searchsorted(string_end, bad, side="right")
        first_bad = dict(zip(owner.tolist()[::-1], bad.tolist()[::-1]))
        fail(owner, lambda i: f"character {shown(chr(text[first_bad[i]]))} at position "
                              f"{first_bad[i] - int(string_start[i])} is not in a compressed "
                              "RLE ('0' to 'o')")
        digits[bad] = 0
    nonempty = lengths > 0
    last = string_end[nonempty] - 1
    # A digit with bit 0x20 continues a number; the last digit of a string must end one.
    fail(np.flatnonzero(nonempty)[digits[last] >= 32],
         lambda i: "the string stops inside a run length")
    ends = digits < 32
    ends[last] = True
    group_end = np.flatnonzero(ends)
    group_len = np.diff(group_end, prepend=-1)
    first_group = np.searchsorted(group_end, string_start)
    groups_per_string = np.searchsorted(group_end, string_end) - first_group

    def owners(groups: np.ndarray) -> np.ndarray:
        return np.searchsorted(first_group + groups_per_string, groups, side="right")

    if (group_len > _MAX_GROUP).any():
        fail(owners(np.flatnonzero(group_len > _MAX_GROUP)), lambda i: (
            f"a run length spans more than {_MAX_GROUP} characters (beyond pycocotools' "
            "integers)"))
        group_len = np.minimum(group_len, _MAX_GROUP)
    # A number is 5-bit digits, least significant first, and signed: the last digit's bit
    # 0x10 is the sign of a two's complement over 5 x length bits. Most are one digit.
    last_digit = digits[group_end].astype(np.int32)
    values = (last_digit & 0x0F) - (last_digit & 0x10)
    longer = np.flatnonzero(group_len > 1)
    if len(longer):
        longer_len = group_len[longer]
        start = group_end[longer] - longer_len + 1
        top = values[longer] << (5 * (longer_len - 1)).astype(np.int32)
        for j in range(int(longer_len.max()) - 1):
            inside = np.flatnonzero(longer_len > j + 1)
            top[inside] += (digits[start[inside] + j] & 0x1F).astype(np.int32) << (5 * j)
        values[longer] = top
    # From the fourth number on, each is stored as the difference to the one two before, so
    # run m >= 1 is the sum of the numbers 1..m of m's parity: (T + (-1)^m U) / 2 with T the
    # running sum of numbers 1..m and U their alternating sum.
    present = np.flatnonzero(groups_per_string)
    starts = first_group[present]
    counts_present = groups_per_string[present]
    odd = np.repeat((starts & 1).astype(bool), counts_present)
    odd ^= _alternating(len(values))
    sign = 1 - 2 * odd.astype(np.int32)  # (-1)^m
    tail = values.copy()
    tail[starts] = 0
    total = np.cumsum(tail, dtype=np.int64)
    tail *= sign
    alternating = np.cumsum(tail, dtype=np.int64)
    total -= np.repeat(total[starts], counts_present)
    alternating -= np.repeat(alternating[starts], counts_present)
    alternating *= sign
    total += alternating
    runs = total >> 1
    runs[starts] = values[starts]
    if (runs < 0).any():
        negative = np.flatnonzero(runs < 0)
        owner = owners(negative)
        first_negative = dict(zip(owner.tolist()[::-1], negative.tolist()[::-1]))
        fail(owner, lambda i: (f"run length {first_negative[i] - int(first_group[i])} decodes "
                               f"to {int(runs[first_negative[i]])} (negative)"))
    if (runs > _MAX_COUNT).any():
        fail(owners(np.flatnonzero(runs > _MAX_COUNT)),
             lambda i: f"a run length exceeds {_MAX_COUNT}")
    sums = np.zeros(n, dtype=np.int64)
    if len(starts):
        sums[present] = np.add.reduceat(runs, starts)
    wrong = np.flatnonzero(sums != np.asarray(areas, dtype=np.int64))
    fail(wrong, lambda i: f"run lengths sum to {int(sums[i])} pixels, the mask has {areas[i]}")
    return reasons


def _alternating(length: int) -> np.ndarray:
    """[False, True, False, True, ...] of the given length."""
    return (np.arange(length) & 1).astype(bool)


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
