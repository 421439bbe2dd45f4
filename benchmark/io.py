"""Reading ground truth and predictions into columnar arrays.

File formats live here, at the edge; everything downstream works on the arrays of
:class:`GroundTruth` and :class:`Detections`. Two layouts are read, for ground truth and
predictions alike:

* the reference layout: COCO-video ground truth (``videos``, ``images`` with ``video_id`` and
  ``frame_index``, ``annotations`` with ``image_id``, ``track_id``, ``bbox``, ``segmentation``,
  ``caption``) and a list of per-frame predictions (``image_id``, ``track_id``, ``bbox``,
  ``segmentation``, ``score``, ``caption``);
* the per-track layout (YouTube-VIS / LV-VIS, MaskCaptioner's ``results.json``): one record
  per track with per-frame ``bboxes`` and/or ``segmentations`` lists (``null`` where the
  object is absent) and one ``caption``.

Every problem is reported as an :class:`~benchmark.errors.InputError` naming the file, the
record and the field. The common case is checked in bulk (one pass per column); only when
that fails is the input scanned record by record to name the culprit.

Example:
    >>> gt = load_ground_truth({"videos": [{"id": 1}], "images": [{"id": 7, "video_id": 1}],
    ...     "annotations": [{"image_id": 7, "track_id": 1, "bbox": [0, 0, 2, 2], "caption": "a dog"}]})
    >>> gt.num_frames.tolist(), gt.detections.boxes.tolist()
    ([1], [[0.0, 0.0, 2.0, 2.0]])
"""

from __future__ import annotations

import gzip
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from itertools import chain, repeat
from operator import is_not
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from benchmark.errors import InputError, shown
from benchmark.gc_pause import gc_paused
from benchmark.structures.masks import check_compressed_rles

Source = str | os.PathLike | dict | list


@dataclass
class Detections:
    """One side's detections (ground truth or predictions), sorted by (video, frame, input order).

    Attributes:
        video: index into :attr:`GroundTruth.video_ids` of each detection.
        frame: position of the detection's frame within its video (0-based).
        track: track id as given (per-track inputs: the track record's id or index).
        boxes: ``(n, 4)`` float32 xywh boxes; NaN rows where only a segmentation was given.
        segmentations: raw segmentation objects (``None`` where absent), converted to RLE
            only when mask IoU is asked for.
        captions: object array of caption strings ("" = not captioned).
        scores: float64 confidence (predictions) or ``None`` (ground truth).
        record_index: index of each detection's record in its file's list.
        record_frame: for per-track inputs the frame within the track's lists, else -1.
        prefix: what the file calls its records ("annotations", "predictions").
        source: the file name (or "predictions (in memory)") the detections came from.
    """

    video: np.ndarray
    frame: np.ndarray
    track: np.ndarray
    boxes: np.ndarray
    segmentations: list | None
    captions: np.ndarray
    scores: np.ndarray | None
    record_index: np.ndarray
    record_frame: np.ndarray
    prefix: str
    source: str

    def describe(self, k: int) -> str:
        """Where detection ``k`` is in its file, e.g. ``predictions[12] frame 3``."""
        label = f"{self.prefix}[{int(self.record_index[k])}]"
        return label if self.record_frame[k] < 0 else f"{label} frame {int(self.record_frame[k])}"

    def __len__(self) -> int:
        return len(self.video)

    def take(self, index: np.ndarray) -> "Detections":
        """The detections at ``index`` (an integer or boolean array), in that order."""
        index = np.flatnonzero(index) if np.asarray(index).dtype == bool else np.asarray(index)
        return Detections(
            video=self.video[index], frame=self.frame[index], track=self.track[index],
            boxes=self.boxes[index],
            segmentations=None if self.segmentations is None
            else [self.segmentations[i] for i in index],
            captions=self.captions[index],
            scores=None if self.scores is None else self.scores[index],
            record_index=self.record_index[index], record_frame=self.record_frame[index],
            prefix=self.prefix, source=self.source)

    def video_slices(self, num_videos: int) -> np.ndarray:
        """Offsets ``o`` such that video ``v``'s detections are ``o[v]:o[v + 1]``."""
        return np.searchsorted(self.video, np.arange(num_videos + 1), side="left")


@dataclass
class ImageTable:
    """Image id -> (video index, frame position), as sorted arrays for vectorised lookups."""

    ids: np.ndarray
    video: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def locate(self, image_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(video, frame, found)`` of each id; video and frame are 0 where not found."""
        if len(self.ids) == 0:
            zeros = np.zeros(len(image_ids), dtype=np.int64)
            return zeros, zeros, zeros.astype(bool)
        at = np.minimum(np.searchsorted(self.ids, image_ids), len(self.ids) - 1)
        found = self.ids[at] == image_ids
        return np.where(found, self.video[at], 0), np.where(found, self.frame[at], 0), found


@dataclass
class GroundTruth:
    """Ground truth: the video table, the frame table and the detections.

    ``images`` maps each image id to its (video index, frame position); it is empty for
    per-track ground truth, which has no images.
    """

    video_ids: np.ndarray
    video_names: list[str]
    num_frames: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    detections: Detections
    images: ImageTable = field(default_factory=lambda: ImageTable(
        *(np.zeros(0, np.int64) for _ in range(3))))
    source: str = "ground truth (in memory)"
    layout: str = "coco-video"
    # Per video: the scoring frame of each display position (frame_index order); None when
    # they coincide (per-track ground truth).
    frame_at_position: list[np.ndarray] | None = None

    @property
    def num_videos(self) -> int:
        return len(self.video_ids)


# --------------------------------------------------------------------------- reading files

@gc_paused()
def read_json(source: Source, *, what: str) -> tuple[Any, str]:
    """Return ``(parsed JSON, display name)`` for a path (``.json`` or ``.json.gz``) or object."""
    if isinstance(source, (dict, list)):
        return source, f"{what} (in memory)"
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(f"{what} must be a file path or parsed JSON (a list or a dict), got "
                         f"{type(source).__name__}")
    path = Path(source)
    name = str(path)
    if not path.exists():
        raise InputError(f"{what} file not found", source=name)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise InputError(f"cannot read {what} file: {exc}", source=name) from exc
    try:
        return _loads(raw), name
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", source=name) from exc
    except RecursionError:
        # The parsers check their depth (no stack overflow): report it as bad input. No
        # valid file of either layout nests deeper than a few levels.
        raise InputError("JSON nested too deeply (lists or objects nested about "
                         f"{sys.getrecursionlimit()} levels or more); no valid input nests "
                         "more than a few levels", source=name) from None


def _loads(raw: bytes) -> Any:
    try:
        import orjson  # about 3x faster on the large prediction files
    except ImportError:
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Python's json.dump writes NaN/Infinity, which orjson refuses: parse those with the
        # standard library so that the validation can name the record with the NaN.
        return json.loads(raw)


# --------------------------------------------------------------------------- column checks

def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    """A number whose float64 value is finite (a JSON 10**400 or 1e400 is not)."""
    if not _is_number(value):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64
        return False


def _types(values: Iterable) -> set[type]:
    """The set of Python types among ``values`` (a C-speed scan, for the bulk checks)."""
    return set(map(type, values))


_INT64 = (-(2**63), 2**63 - 1)
_MAX_FRAMES = 2**31 - 1  # frames per video (per-track ground truth's 'length')


def _column(records: Sequence[dict], key: str, where: "_Where") -> list:
    try:
        return [r[key] for r in records]
    except (KeyError, TypeError):
        where.fail_first(records, lambda r: isinstance(r, dict) and key in r,
                         "missing field" if all(isinstance(r, dict) for r in records)
                         else "a record must be a JSON object", key)


def _int_column(records: Sequence[dict], key: str, where: "_Where") -> np.ndarray:
    values = _column(records, key, where)
    if not _types(values) <= {int}:  # fast path for the usual plain ints
        where.fail_first(values, _is_int, "must be an integer", key, by_value=True)
    return _int64(values, key, where)


def _int64(values: list, key: str, where: "_Where") -> np.ndarray:
    """Python ints (already checked) as int64, refusing those beyond 64 bits."""
    if values and (min(values) < _INT64[0] or max(values) > _INT64[1]):
        where.fail_first(values, lambda v: _INT64[0] <= v <= _INT64[1],
                         "is outside the 64-bit integer range", key, by_value=True)
    return np.asarray(values, dtype=np.int64)


def _track_column(records: Sequence[dict], where: "_Where") -> np.ndarray:
    """Track ids as int64: integers as given, or strings (the reference accepts any ids it
    can sort) replaced by their rank among the file's distinct strings; one kind per file.

    Example:
        >>> _track_column([{"track_id": "car"}, {"track_id": "bus"}, {"track_id": "car"}],
        ...               _Where("p.json", "predictions")).tolist()
        [1, 0, 1]
    """
    values = _column(records, "track_id", where)
    kinds = _types(values)
    if kinds <= {int}:
        return _int64(values, "track_id", where)
    if kinds <= {str}:
        _check_unicode(values, where, "track_id")
        return np.unique(np.asarray(values, dtype=object), return_inverse=True)[1].astype(np.int64)
    where.fail_first(values, _is_int, "must be an integer or a string, the same kind for every record",
                     "track_id", by_value=True)


def _video_names(videos: list[dict], name: str) -> list[str]:
    """Each video's ``name`` (its id where it has none), which outputs are keyed by."""
    names = [str(v.get("name", v["id"])) for v in videos]
    _check_unicode(names, _Where(name, "videos"), "name")
    return names


def _box_array(boxes: list, where: "_Where", key: str, positions: Sequence[int]) -> np.ndarray:
    """Validate a list of xywh boxes and return them as an ``(n, 4)`` float32 array."""
    try:
        array = np.asarray(boxes, dtype=np.float64)
        ok = array.ndim == 2 and array.shape[1] == 4 and array.shape[0] == len(boxes)
    except (ValueError, TypeError, OverflowError):  # OverflowError: an int beyond float64
        ok = False
    if ok:
        # numpy silently parses strings and bools as numbers: check the element types too.
        ok = _types(chain.from_iterable(boxes)) <= {int, float}
    if not ok:
        for i, box in zip(positions, boxes):
            if not (isinstance(box, (list, tuple)) and len(box) == 4
                    and all(_is_number(v) for v in box)):
                where.fail(i, f"must be [x, y, w, h] numbers, got {shown(box)}", key)
            if not all(_is_finite_number(v) for v in box):
                where.fail(i, f"has a NaN or infinite value: {shown(box)}", key)
        # Valid after all (e.g. numpy scalars in an in-memory source).
        array = np.asarray([[float(v) for v in box] for box in boxes],
                           dtype=np.float64).reshape(-1, 4)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        i = int(np.flatnonzero(~finite)[0])
        where.fail(positions[i], f"has a NaN or infinite value: {shown(boxes[i])}", key)
    negative = (array[:, 2:] < 0).any(axis=1)
    if negative.any():
        i = int(np.flatnonzero(negative)[0])
        where.fail(positions[i], f"has a negative width or height: {shown(boxes[i])}", key)
    with np.errstate(over="ignore"):  # checked just below
        boxes32 = array.reshape(-1, 4).astype(np.float32)
    # Boxes are scored in float32: every value, and the x + w, y + h and w * h the IoU
    # computes, must stay finite there (1e300 is finite in float64 only).
    with np.errstate(over="ignore"):
        derived = np.concatenate([boxes32, boxes32[:, :2] + boxes32[:, 2:],
                                  boxes32[:, 2:3] * boxes32[:, 3:4]], axis=1)
    too_large = ~np.isfinite(derived).all(axis=1)
    if too_large.any():
        i = int(np.flatnonzero(too_large)[0])
        where.fail(positions[i], f"is beyond float32's range (the scorer's box precision, up "
                   f"to about 3.4e38 for each value, for x + w, y + h and for w * h): "
                   f"{shown(boxes[i])}", key)
    return boxes32


def _caption_column(records: Sequence[dict], where: "_Where", *, required: bool) -> np.ndarray:
    captions = [r.get("caption") for r in records]
    if required and captions and _types(captions) == {type(None)}:
        raise InputError("no record has a 'caption': score detection and tracking only with "
                         "caption_metrics=() (CLI: --caption-metrics with no names)",
                         source=where.source, field="caption")
    if not _types(captions) <= {str}:
        for i, caption in enumerate(captions):
            if caption is None and not required:
                captions[i] = ""
            elif not isinstance(caption, str):
                where.fail(i, "missing field" if caption is None
                           else f"must be a string, got {type(caption).__name__}", "caption")
    _check_unicode(captions, where, "caption")
    return np.asarray(captions, dtype=object)


def _check_unicode(texts: list[str], where: "_Where", key: str) -> None:
    """Refuse text that is not valid Unicode: a lone surrogate (JSON ``"\\ud800"``) cannot be
    encoded as UTF-8, so the caption scorers, the score cache and the stores could not take it.
    One C-speed pass over all texts; the record is named only when it fails.

    Example:
        >>> _check_unicode(["a dog", "a \\ud800 cat"], _Where("p.json", "predictions"), "caption")
        Traceback (most recent call last):
        ...
        benchmark.errors.InputError: p.json: record predictions[1], field 'caption': is not valid Unicode: '\\ud800' at position 2 (a lone surrogate)
    """
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        for i, text in enumerate(texts):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                where.fail(i, f"is not valid Unicode: {shown(text[exc.start])} at position "
                           f"{exc.start} (a lone surrogate)", key)


@dataclass
class _Where:
    """Names records in error messages: ``<source>: <prefix>[i] (id ...), field 'f'``."""

    source: str
    prefix: str
    labels: list[str] | None = None  # overrides "<prefix>[i]" (per-track frames)

    def name(self, index: int, record: Any = None) -> str:
        if self.labels is not None:
            return self.labels[index]
        label = f"{self.prefix}[{index}]"
        if isinstance(record, dict) and _is_int(record.get("id")) \
                and _INT64[0] <= record["id"] <= _INT64[1]:  # not a 400-digit label
            label += f" (id {record['id']})"
        return label

    def fail(self, index: int, message: str, key: str | None = None, record: Any = None):
        raise InputError(message, source=self.source, record=self.name(index, record), field=key)

    def fail_first(self, items: Sequence, is_ok, message: str, key: str, *, by_value=False):
        for i, item in enumerate(items):
            if not is_ok(item):
                text = f"{message}, got {shown(item)}" if by_value else message
                self.fail(i, text, key)
        raise AssertionError("fail_first called on valid input")  # pragma: no cover


def _records(container: Any, key: str | None, where: _Where) -> list[dict]:
    records = container if key is None else container.get(key)
    if not isinstance(records, list):
        raise InputError(f"must be a list, got {type(records).__name__}",
                         source=where.source, field=key)
    return records


# --------------------------------------------------------------------------- ground truth

@gc_paused()
def load_ground_truth(source: Source, *, require_captions: bool = True) -> GroundTruth:
    """Load ground truth from a path, a ``.json.gz`` path or an already-parsed dict.

    Both layouts are accepted (see the module docstring). With ``require_captions=False`` a
    missing ``caption`` counts as "" (box-only datasets scored for DetA/AssA only).
    ``frame_index`` is given on every image or on none (an input error otherwise, naming the
    first image without one); gaps in a video's ``frame_index`` values only warn, as frames
    are scored in image-id order.

    Example:
        >>> gt = load_ground_truth("gt.json")           # doctest: +SKIP
        >>> gt.num_videos, len(gt.detections)           # doctest: +SKIP
        (602, 361200)
    """
    data, name = read_json(source, what="ground truth")
    if isinstance(data, list):
        raise InputError(
            "ground truth must be a JSON object with 'images' (or 'videos') and 'annotations', "
            "but this is a list, which is how predictions look: are the ground truth and the "
            "predictions swapped?", source=name)
    if not isinstance(data, dict) or "annotations" not in data:
        raise InputError("ground truth must be a JSON object with an 'annotations' list",
                         source=name, field="annotations")
    annotations = _records(data, "annotations", _Where(name, "annotations"))
    if _is_per_track(annotations, data):
        return _load_per_track_gt(data, annotations, name, require_captions)
    return _load_coco_video_gt(data, annotations, name, require_captions)


def _is_per_track(annotations: list, data: dict) -> bool:
    if "images" in data:
        return False
    first = next((a for a in annotations if isinstance(a, dict)), {})
    return "bboxes" in first or "segmentations" in first or "images" not in data


def _video_table(data: dict, name: str, *, needed: bool) -> tuple[list[dict], dict[int, int]]:
    if "videos" not in data:
        if needed:
            raise InputError("missing field", source=name, field="videos")
        return [], {}
    where = _Where(name, "videos")
    videos = _records(data, "videos", where)
    ids = _int_column(videos, "id", where)
    index: dict[int, int] = {}
    for i, video_id in enumerate(ids.tolist()):
        if video_id in index:
            where.fail(i, f"duplicate video id {video_id}", "id")
        index[video_id] = i
    return videos, index


def _load_coco_video_gt(data: dict, annotations: list, name: str,
                        require_captions: bool) -> GroundTruth:
    videos, video_index = _video_table(data, name, needed=False)
    images_where = _Where(name, "images")
    images = _records(data, "images", images_where)
    image_ids = _int_column(images, "id", images_where)
    image_videos = _int_column(images, "video_id", images_where)
    if not videos:  # no video table: the videos are those the images name, in id order
        videos = [{"id": int(v)} for v in np.unique(image_videos)]
        video_index = {v["id"]: i for i, v in enumerate(videos)}
    unknown = [i for i, v in enumerate(image_videos.tolist()) if v not in video_index]
    if unknown:
        images_where.fail(unknown[0], f"video_id {int(image_videos[unknown[0]])} is not in "
                          "'videos'", "video_id")
    # Frames are scored in image-id order, as the reference scorer sorts a video's image ids
    # (the order of the float64 sums in the global alignment decides exact ties). The display
    # position is the frame_index order when every image has one: per-track lists follow it.
    # frame_index is all or nothing: on only some images the display order would be half
    # made up. Gaps in it are allowed (sampled frames) but warned about.
    with_index = [isinstance(im, dict) and "frame_index" in im for im in images]
    has_index = all(with_index)
    if any(with_index) and not has_index:
        i = with_index.index(False)
        images_where.fail(i, f"missing field, which {sum(with_index)} of the {len(images)} "
                          "images have: give 'frame_index' on every image or on none",
                          "frame_index", images[i])
    position_key = _int_column(images, "frame_index", images_where) if has_index else image_ids
    video_of_image = np.asarray([video_index[v] for v in image_videos.tolist()], dtype=np.int64)
    frame_of_image = _rank_within_video(video_of_image, image_ids, len(videos))
    position_of_image, clash = _rank_within_video(video_of_image, position_key, len(videos), ties=True)
    if clash is not None:
        images_where.fail(clash, "two images of one video share this frame position",
                          "frame_index" if has_index else "id")
    if has_index:
        _warn_frame_index_gaps(position_key, video_of_image, videos, name)
    by_id = np.argsort(image_ids, kind="stable")
    repeated = np.flatnonzero(np.diff(image_ids[by_id]) == 0)
    if len(repeated):
        i = int(by_id[repeated[0] + 1])
        images_where.fail(i, f"duplicate image id {int(image_ids[i])}", "id")
    image_table = ImageTable(ids=image_ids[by_id], video=video_of_image[by_id],
                             frame=frame_of_image[by_id])
    num_frames = np.bincount(video_of_image, minlength=len(videos)).astype(np.int64)
    heights, widths = _sizes(videos, images, video_of_image, name)
    starts = np.concatenate([[0], np.cumsum(num_frames)[:-1]]).astype(np.int64)
    flat = np.empty(len(images), dtype=np.int64)
    flat[starts[video_of_image] + position_of_image] = frame_of_image
    frame_at_position = np.split(flat, np.cumsum(num_frames)[:-1])

    where = _Where(name, "annotations")
    detections = _place_frame_columns(
        _frame_columns(annotations, where, scores=False, require_captions=require_captions),
        image_table)
    _check_duplicates(detections)
    return GroundTruth(
        video_ids=np.asarray([v["id"] for v in videos], dtype=np.int64),
        video_names=_video_names(videos, name), num_frames=num_frames,
        heights=heights, widths=widths, detections=detections, images=image_table,
        source=name, layout="coco-video", frame_at_position=frame_at_position)


def _warn_frame_index_gaps(frame_index: np.ndarray, video: np.ndarray, videos: list[dict],
                           name: str) -> None:
    """Warn (once, naming the first video and a missing value) when a video's frame_index
    values are not consecutive. Scoring is unaffected (frames are scored in image-id order);
    the warning says that frames may be missing from the ground truth.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _warn_frame_index_gaps(np.array([0, 1, 3]), np.array([0, 0, 0]), [{"id": 5}], "gt.json")
        >>> print(caught[0].message)
        gt.json: field 'frame_index': 1 of 1 videos have gaps in frame_index, first video 5 (3 images over frame_index 0 to 3, 2 is missing); frames are scored in image-id order, the gaps are ignored
    """
    order = np.lexsort((frame_index, video))
    v, k = video[order], frame_index[order].astype(object)  # Python ints: no int64 wrap-around
    jumps = np.flatnonzero((v[1:] == v[:-1]) & (k[1:] - k[:-1] > 1))
    if not len(jumps):
        return
    first = int(v[jumps[0]])
    in_first = frame_index[video == first]
    warnings.warn(
        f"{name}: field 'frame_index': {len(np.unique(v[jumps]))} of {len(np.unique(video))} videos "
        f"have gaps in frame_index, first video {videos[first]['id']} ({len(in_first)} images over "
        f"frame_index {int(in_first.min())} to {int(in_first.max())}, {k[jumps[0]] + 1} is missing); "
        "frames are scored in image-id order, the gaps are ignored", UserWarning, stacklevel=4)


def _rank_within_video(video: np.ndarray, key: np.ndarray, num_videos: int, *,
                       ties: bool = False):
    """Position of each image within its video when the video's images are sorted by ``key``.

    With ``ties=True`` also returns the index of an image whose key repeats another of its
    video (None when all differ).

    Example:
        >>> _rank_within_video(np.array([0, 0, 1, 0]), np.array([30, 10, 5, 20]), 2).tolist()
        [2, 0, 0, 1]
    """
    order = np.lexsort((key, video))
    sorted_videos = video[order]
    starts = np.searchsorted(sorted_videos, np.arange(num_videos))
    rank = np.empty(len(video), dtype=np.int64)
    rank[order] = np.arange(len(video)) - starts[sorted_videos]
    if not ties:
        return rank
    clash = np.flatnonzero((np.diff(sorted_videos) == 0) & (np.diff(key[order]) == 0))
    return rank, (int(order[clash[0] + 1]) if len(clash) else None)


_MAX_SIDE = 2**31 - 1  # pycocotools keeps mask heights and widths in 32-bit integers


def _side(value: Any) -> int | None:
    """A height or width as an int (0 = unknown), or None when it is not one."""
    if value is None:
        return 0
    if _is_int(value) and 0 <= value <= _MAX_SIDE:
        return int(value)
    if isinstance(value, float) and value.is_integer() and 0 <= value <= _MAX_SIDE:
        return int(value)  # 720.0, as some writers store sizes
    return None


def _sizes(videos: list[dict], images: list[dict] | None,
           video_of_image: np.ndarray | None, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-video height and width (0 = unknown), from the video table or its first image."""
    sizes = {}
    for key in ("height", "width"):
        values = []
        for i, video in enumerate(videos):
            side = _side(video.get(key))
            if side is None:
                _Where(name, "videos").fail(i, f"must be a non-negative integer of at most "
                                            f"{_MAX_SIDE}, got {shown(video.get(key))}", key, video)
            values.append(side)
        sizes[key] = np.asarray(values, dtype=np.int64)
    heights, widths = sizes["height"], sizes["width"]
    if images is not None and video_of_image is not None:
        for i, (image, v) in enumerate(zip(images, video_of_image.tolist())):
            for key, table in (("height", heights), ("width", widths)):
                if table[v] == 0 and _is_int(image.get(key)):
                    if _side(image[key]) is None:
                        _Where(name, "images").fail(
                            i, f"must be a non-negative integer of at most {_MAX_SIDE}, got "
                            f"{shown(image[key])}", key, image)
                    table[v] = image[key]
    return heights, widths


@dataclass
class FrameColumns:
    """Per-frame records (reference layout) read into columns and checked as far as that
    needs no ground truth: every field's type, the boxes, the RLE strings, the captions and
    the scores. :func:`_place_frame_columns` then places them in the ground truth's frames."""

    where: _Where
    image_ids: np.ndarray
    tracks: np.ndarray
    boxes: np.ndarray
    segmentations: list | None
    captions: np.ndarray
    scores: np.ndarray | None
    video_ids: list  # the optional video_id of each record (None where absent)


def _frame_columns(records: list, where: _Where, *, scores: bool,
                   require_captions: bool) -> FrameColumns:
    image_ids = _int_column(records, "image_id", where)
    tracks = _track_column(records, where)
    boxes, segmentations = _geometry(where, [r.get("bbox") for r in records],
                                     [r.get("segmentation") for r in records])
    return FrameColumns(
        where=where, image_ids=image_ids, tracks=tracks, boxes=boxes,
        segmentations=segmentations,
        captions=_caption_column(records, where, required=require_captions),
        scores=_score_column(records, where) if scores else None,
        video_ids=[r.get("video_id") for r in records])


def _place_frame_columns(columns: FrameColumns, image_table: ImageTable,
                         video_ids: np.ndarray | None = None) -> Detections:
    """Detections of per-frame columns, each at its image's video and frame; with the
    ground truth's ``video_ids``, a record's optional video_id must be its image's."""
    where, image_ids = columns.where, columns.image_ids
    video, frame, found = image_table.locate(image_ids)
    if not found.all():
        i = int(np.flatnonzero(~found)[0])
        where.fail(i, f"image_id {int(image_ids[i])} is not an image of the ground truth",
                   "image_id")
    if video_ids is not None:
        given = columns.video_ids
        present = np.fromiter((g is not None for g in given), dtype=bool, count=len(given))
        if present.any():
            rows = np.flatnonzero(present)
            values = [given[i] for i in rows.tolist()]
            if _types(values) <= {int} and _INT64[0] <= min(values) and max(values) <= _INT64[1]:
                wrong = rows[np.asarray(values, dtype=np.int64) != video_ids[video[rows]]]
            else:  # not integers, or beyond 64 bits: no video has such an id
                wrong = [i for i, g in zip(rows.tolist(), values)
                         if not _is_int(g) or not _INT64[0] <= g <= _INT64[1]]
            if len(wrong):
                i = int(wrong[0])
                where.fail(i, f"video_id {shown(given[i])} disagrees with image_id "
                           f"{int(image_ids[i])}, which belongs to video "
                           f"{int(video_ids[video[i]])}", "video_id")
    n = len(image_ids)
    return _sorted(Detections(
        video=video, frame=frame, track=columns.tracks, boxes=columns.boxes,
        segmentations=columns.segmentations, captions=columns.captions, scores=columns.scores,
        record_index=np.arange(n), record_frame=np.full(n, -1), prefix=where.prefix,
        source=where.source))


def _geometry(where: _Where, bboxes: list,
              segmentations: list) -> tuple[np.ndarray, list | None]:
    """Boxes (NaN where only a mask is given) and raw segmentations (None if none at all)."""
    n = len(bboxes)
    # The usual files give every record a box, or none a segmentation: count before scanning.
    all_boxes, no_segmentations = None not in bboxes, segmentations.count(None) == n
    if not all_boxes:
        has_box = np.fromiter(map(is_not, bboxes, repeat(None)), dtype=bool, count=n)
        has_seg = np.zeros(n, dtype=bool) if no_segmentations \
            else np.fromiter(map(is_not, segmentations, repeat(None)), dtype=bool, count=n)
        neither = np.flatnonzero(~has_box & ~has_seg)
        if len(neither):
            where.fail(int(neither[0]), "needs a 'bbox' or a 'segmentation'", "bbox")
    compressed, counts, areas = [], [], []
    for i, seg in enumerate([] if no_segmentations else segmentations):
        if type(seg) is not dict or type(seg.get("counts")) is not str:
            continue  # other encodings are checked where they are converted (to_rle)
        size = seg.get("size")
        if type(size) is list and len(size) == 2:
            h, w = size
            if type(h) is int and type(w) is int and 0 <= h <= _MAX_SIDE and 0 <= w <= _MAX_SIDE:
                compressed.append(i)
                counts.append(seg["counts"])
                areas.append(h * w)
                continue
        counts_text = seg["counts"]
        if not counts_text.isascii():
            compressed.append(i)  # reported just below, in record order
            counts.append(counts_text)
            areas.append(0)
    # pycocotools encodes compressed counts as UTF-8 (a lone surrogate raises) and reads
    # them as ASCII: refuse any other character here, where the record can be named.
    if not "".join(counts).isascii():
        for i, text in zip(compressed, counts):
            if not text.isascii():
                bad = next(k for k, c in enumerate(text) if not c.isascii())
                where.fail(i, f"compressed RLE 'counts' must be ASCII text, got "
                           f"{shown(text[bad])} at position {bad}", "segmentation")
    # pycocotools trusts compressed counts (a corrupted string can make its IoU loop
    # forever): decode every one, all at once, before any IoU.
    for i, reason in zip(compressed, check_compressed_rles(counts, areas)):
        if reason is not None:
            where.fail(i, f"compressed RLE 'counts' of size {shown(segmentations[i]['size'])}: "
                       f"{reason}", "segmentation")
    if all_boxes:
        boxes = _box_array(bboxes, where, "bbox", range(n))
    else:
        boxes = np.full((n, 4), np.nan, dtype=np.float32)
        idx = np.flatnonzero(has_box)
        if len(idx):
            boxes[idx] = _box_array([bboxes[k] for k in idx.tolist()], where, "bbox", idx.tolist())
    return boxes, (None if no_segmentations else segmentations)


def _score_column(records: list, where: _Where) -> np.ndarray:
    values = [r.get("score") for r in records]  # records: dicts, checked by an earlier column
    if _types(values) <= {int, float}:
        try:
            scores = np.asarray(values, dtype=np.float64)
        except OverflowError:  # an int beyond float64: named below
            scores = np.asarray([math.nan])
        if np.isfinite(scores).all():
            return scores
    for i, value in enumerate(values):
        if value is None:
            where.fail(i, "missing field", "score")
        if not _is_finite_number(value):
            where.fail(i, f"must be a finite number, got {shown(value)}", "score")
    raise AssertionError("unreachable: a bad score was not reported")  # pragma: no cover


def _sorted(detections: Detections) -> Detections:
    order = np.lexsort((np.arange(len(detections)), detections.frame, detections.video))
    if np.array_equal(order, np.arange(len(order))):
        return detections
    return detections.take(order)


def _check_duplicates(detections: Detections) -> None:
    """One track may have one detection per frame: report the second of any pair."""
    if len(detections) < 2:
        return
    keys = np.stack([detections.video, detections.frame, detections.track], axis=1)
    order = np.lexsort((np.arange(len(keys)), keys[:, 2], keys[:, 1], keys[:, 0]))
    same = (np.diff(keys[order], axis=0) == 0).all(axis=1)
    if same.any():
        k = int(np.flatnonzero(same)[0])
        first, second = int(order[k]), int(order[k + 1])
        raise InputError(
            f"duplicate detection: its track already has a detection in this frame "
            f"({detections.describe(first)})",
            source=detections.source, record=detections.describe(second), field="track_id")


def _load_per_track_gt(data: dict, annotations: list, name: str,
                       require_captions: bool) -> GroundTruth:
    videos, video_index = _video_table(data, name, needed=True)
    where = _Where(name, "videos")
    lengths = []
    for i, video in enumerate(videos):
        length = video.get("length")
        if length is None and isinstance(video.get("file_names"), list):
            length = len(video["file_names"])
        if not _is_int(length) or not 0 <= length <= _MAX_FRAMES:
            where.fail(i, f"needs a non-negative integer 'length' of at most {_MAX_FRAMES} "
                       f"(or a 'file_names' list), got {shown(length)}", "length", video)
        lengths.append(length)
    num_frames = np.asarray(lengths, dtype=np.int64)
    heights, widths = _sizes(videos, None, None, name)
    detections = _per_track_detections(annotations, _Where(name, "annotations"), video_index,
                                       num_frames, scores=False,
                                       require_captions=require_captions)
    _check_duplicates(detections)
    return GroundTruth(
        video_ids=np.asarray([v["id"] for v in videos], dtype=np.int64),
        video_names=_video_names(videos, name), num_frames=num_frames,
        heights=heights, widths=widths, detections=detections, source=name,
        layout="per-track")


def _per_track_detections(records: list, where: _Where, video_index: dict[int, int],
                          num_frames: np.ndarray, *, scores: bool, require_captions: bool,
                          frame_at_position: list[np.ndarray] | None = None) -> Detections:
    """Expand one-record-per-track into one detection per non-null frame. List entry f is the
    video's f-th frame in display order, scored at ``frame_at_position[video][f]``."""
    video_ids = _int_column(records, "video_id", where)
    captions = _caption_column(records, where, required=require_captions)
    track_scores = _score_column(records, where) if scores else None
    det_video, det_frame, det_position, det_track, det_record, det_boxes, det_segs = [], [], [], [], [], [], []
    for i, (record, video_id) in enumerate(zip(records, video_ids.tolist())):
        if video_id not in video_index:
            where.fail(i, f"video_id {video_id} is not a video of the ground truth",
                       "video_id", record)
        v = video_index[video_id]
        per_frame = {}
        for key in ("bboxes", "segmentations"):
            values = record.get(key)
            if values is None:
                continue
            if not isinstance(values, list) or len(values) != num_frames[v]:
                found = len(values) if isinstance(values, list) else type(values).__name__
                where.fail(i, f"must be a list with one entry per frame ({num_frames[v]} "
                           f"for video {video_id}), got {found}", key, record)
            per_frame[key] = values
        if not per_frame:
            where.fail(i, "needs a 'bboxes' or a 'segmentations' list", "segmentations", record)
        # Ground-truth tracks carry their own id; prediction tracks are numbered by record.
        track = record.get("id", i) if not scores else i
        if not _is_int(track) or not _INT64[0] <= track <= _INT64[1]:
            where.fail(i, f"must be a 64-bit integer, got {shown(track)}", "id", record)
        boxes = per_frame.get("bboxes", [None] * int(num_frames[v]))
        segs = per_frame.get("segmentations", [None] * int(num_frames[v]))
        for f, (box, seg) in enumerate(zip(boxes, segs)):
            if box is None and seg is None:
                continue
            det_video.append(v)
            det_frame.append(f if frame_at_position is None else int(frame_at_position[v][f]))
            det_position.append(f)
            det_track.append(track)
            det_record.append(i)
            det_boxes.append(box)
            det_segs.append(seg)
    index = np.asarray(det_record, dtype=np.int64)
    frames = np.asarray(det_frame, dtype=np.int64)
    positions = np.asarray(det_position, dtype=np.int64)
    # Errors in a box name the track record and the frame within its lists.
    box_where = _Where(where.source, where.prefix,
                       labels=[f"{where.prefix}[{i}] frame {f}" for i, f in zip(det_record, det_frame)])
    boxes, segmentations = _geometry(box_where, det_boxes, det_segs)
    return _sorted(Detections(
        video=np.asarray(det_video, dtype=np.int64), frame=frames,
        track=np.asarray(det_track, dtype=np.int64), boxes=boxes, segmentations=segmentations,
        captions=captions[index] if len(index) else np.asarray([], dtype=object),
        scores=None if track_scores is None else track_scores[index],
        record_index=index, record_frame=positions, prefix=where.prefix, source=where.source))


# --------------------------------------------------------------------------- predictions

@dataclass
class PredictionRecords:
    """A prediction file read and checked as far as that needs no ground truth (see
    :func:`read_predictions`); :func:`place_predictions` finishes the job against it.

    Attributes:
        source: the file name, or "predictions (in memory)".
        records: per-track records as parsed (they can only be expanded once the videos'
            lengths are known), else ``None``.
        columns: per-frame records (with ``image_id``) as checked columns, else ``None``.
        require_captions: whether a record without a caption is an error (per-track records
            are checked when placed).
    """

    source: str
    records: list | None
    columns: FrameColumns | None
    require_captions: bool = True


@gc_paused()
def read_predictions(source: Source, *, require_captions: bool = True) -> PredictionRecords:
    """Parse predictions (a path, a list, or a dict with an ``annotations`` list) and check
    what can be checked without the ground truth, so that this can run while the ground
    truth loads (:class:`benchmark.background.PendingGroundTruth`).

    Example:
        >>> records = read_predictions([{"image_id": 7, "track_id": 3, "bbox": [0, 0, 1, 1],
        ...                              "score": 0.9, "caption": "a cat"}])
        >>> records.columns.image_ids.tolist(), records.columns.scores.tolist()
        ([7], [0.9])
    """
    data, name = read_json(source, what="predictions")
    if isinstance(data, dict):
        if "images" in data or "videos" in data:
            raise InputError(
                "predictions must be a list of detections, but this object has "
                f"{'images' if 'images' in data else 'videos'}, which is how ground truth "
                "looks: are the ground truth and the predictions swapped?", source=name)
        if not isinstance(data.get("annotations"), list):
            raise InputError("predictions must be a JSON list (or an object with an "
                             "'annotations' list)", source=name)
        data = data["annotations"]
    if not isinstance(data, list):
        raise InputError(f"predictions must be a JSON list, got {type(data).__name__}",
                         source=name)
    first = next((r for r in data if isinstance(r, dict)), {})
    if "image_id" not in first and ("segmentations" in first or "bboxes" in first):
        return PredictionRecords(source=name, records=data, columns=None,
                                 require_captions=require_captions)
    # The parsed records are let go here: columns are all the scorer needs.
    return PredictionRecords(source=name, records=None, columns=_frame_columns(
        data, _Where(name, "predictions"), scores=True, require_captions=require_captions),
        require_captions=require_captions)


def place_predictions(records: PredictionRecords, gt: GroundTruth, *,
                      score_threshold: float | None = None) -> Detections:
    """Place what :func:`read_predictions` read in the ground truth's videos and frames:
    per-frame records by ``image_id``, per-track records by ``video_id`` and list position,
    each record becoming one track. A track may have one detection per frame; with
    ``score_threshold`` only the detections the scorer keeps (score > threshold) must obey
    that, as the reference filters first."""
    if records.columns is None:
        video_index = {int(v): i for i, v in enumerate(gt.video_ids.tolist())}
        detections = _per_track_detections(records.records, _Where(records.source, "predictions"),
                                           video_index, gt.num_frames, scores=True,
                                           require_captions=records.require_captions,
                                           frame_at_position=gt.frame_at_position)
    else:
        if not len(gt.images):
            raise InputError("per-frame predictions (with image_id) need ground truth with an "
                             "'images' table; this ground truth is per-track: give per-track "
                             "predictions (a 'segmentations'/'bboxes' list per track)",
                             source=records.source)
        detections = _place_frame_columns(records.columns, gt.images, video_ids=gt.video_ids)
    kept = detections if score_threshold is None else detections.take(detections.scores > score_threshold)
    _check_duplicates(kept)
    return detections


def load_predictions(source: Source, gt: GroundTruth, *, require_captions: bool = True,
                     score_threshold: float | None = None) -> Detections:
    """Load predictions (a path, a list, or a dict with an ``annotations`` list) against ``gt``:
    :func:`read_predictions`, then :func:`place_predictions` (see both).

    Example:
        >>> gt = load_ground_truth({"images": [{"id": 7, "video_id": 1}], "annotations": []})
        >>> pred = load_predictions([{"image_id": 7, "track_id": 3, "bbox": [0, 0, 1, 1],
        ...                           "score": 0.9, "caption": "a cat"}], gt)
        >>> pred.track.tolist(), pred.scores.tolist()
        ([3], [0.9])
    """
    return place_predictions(read_predictions(source, require_captions=require_captions), gt,
                             score_threshold=score_threshold)


def iter_newline_captions(detections: Detections) -> Iterable[tuple[str, str]]:
    """Yield ``(record, caption)`` for captions holding a line break (METEOR's protocol is
    line-based, so the scorer replaces them by spaces and warns)."""
    captions = detections.captions.tolist()
    joined = "".join(captions)
    if "\n" not in joined and "\r" not in joined:  # the usual: none, seen at C speed
        return
    for k, caption in enumerate(captions):
        if "\n" in caption or "\r" in caption:
            yield detections.describe(k), caption
