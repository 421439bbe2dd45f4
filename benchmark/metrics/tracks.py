"""Whole-video tracks ("tubes") read from either accepted format, for the track-level metrics.

Track mAP, J&F and VoCap's object captioning score a *track* (one object over a whole video),
not a box per frame. This module turns both accepted layouts into the same ``TrackSet``:

- COCO-video (frame-level): ``videos``/``images``/``annotations`` with ``track_id``; the frames
  of one ``(video_id, track_id)`` form a track. Frame-level predictions (a list of
  ``{image_id, track_id, category_id, score, bbox, segmentation}``) are grouped by
  ``(video_id, track_id, category_id)``; the track score is the mean of its frame scores.
- Per-track (YouTube-VIS / LV-VIS): one annotation or prediction per track with
  ``segmentations`` / ``bboxes`` lists as long as the video (``null`` = absent).

Example:
    >>> gt = {"videos": [{"id": 1, "height": 4, "width": 4, "length": 1}],
    ...       "annotations": [{"id": 7, "video_id": 1, "category_id": 2,
    ...                        "bboxes": [[0, 0, 2, 2]], "caption": "a cup"}],
    ...       "categories": [{"id": 2, "name": "cup"}]}
    >>> ts = load_tracks(gt, role="gt")
    >>> (ts.tracks[0].track_id, ts.tracks[0].areas, ts.tracks[0].captions)
    (7, [4.0], ['a cup'])
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pycocotools import mask as mask_utils

from benchmark.errors import InputError
from benchmark.io import read_json
from benchmark.structures.masks import to_rle

Role = Literal["gt", "pred"]


@dataclass(frozen=True)
class VideoInfo:
    """One video: its id, frame size and number of frames."""

    id: int
    height: int
    width: int
    length: int


@dataclass
class Track:
    """One object over a whole video; per-frame lists have ``length`` entries, ``None`` = absent."""

    video_id: int
    track_id: int
    category_id: int
    masks: list[dict | None]
    boxes: list[list[float] | None]
    areas: list[float | None]
    score: float = 1.0
    iscrowd: bool = False
    captions: list[str] = field(default_factory=list)
    record: int | str | None = None  # where it came from, for error messages

    @property
    def mean_area(self) -> float:
        """YouTube-VIS's ``avg_area``: mean of the frame areas that are truthy (zeros dropped)."""
        present = [a for a in self.areas if a]
        return float(np.mean(present)) if present else 0.0


@dataclass
class TrackSet:
    """Tracks of one file plus what is needed to read predictions against it."""

    source: str
    videos: dict[int, VideoInfo]
    tracks: list[Track]
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    # image id -> (video id, frame index); only for COCO-video ground truth
    images: dict[int, tuple[int, int]] = field(default_factory=dict)

    def by_video(self) -> dict[int, list[Track]]:
        """Tracks grouped by video id, in file order."""
        grouped: dict[int, list[Track]] = defaultdict(list)
        for track in self.tracks:
            grouped[track.video_id].append(track)
        return grouped


def _source_name(src: Any, default: str) -> str:
    return os.fspath(src) if isinstance(src, (str, os.PathLike)) else default


def _int(record: dict, name: str, *, source: str, record_id: Any, optional: bool = False) -> Any:
    if not isinstance(record, dict):
        raise InputError("expected a JSON object", source=source, record=record_id)
    value = record.get(name)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        what = "missing" if name not in record else f"must be an integer, got {value!r}"
        raise InputError(what, source=source, record=record_id, field=name)
    return value


def _mask(seg: Any, video: VideoInfo, *, source: str, record_id: Any, fld: str) -> dict | None:
    if seg is None:
        return None
    try:
        rle = to_rle(seg, video.height, video.width)
    except ValueError as exc:
        raise InputError(str(exc), source=source, record=record_id, field=fld) from None
    if list(rle["size"]) != [video.height, video.width]:
        raise InputError(f"mask size {list(rle['size'])} differs from video {video.id}'s "
                         f"[{video.height}, {video.width}]", source=source, record=record_id,
                         field=fld)
    return rle


def _box(value: Any, *, source: str, record_id: Any, fld: str) -> list[float] | None:
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and np.isfinite(v) for v in value)):
        raise InputError(f"a box must be 4 finite numbers [x, y, w, h], got {value!r}",
                         source=source, record=record_id, field=fld)
    return [float(v) for v in value]


def _area(mask: dict | None, box: list[float] | None) -> float | None:
    if mask is not None:
        return float(mask_utils.area(mask))
    if box is not None:
        return box[2] * box[3]
    return None


def _read_videos(data: dict, source: str) -> dict[int, VideoInfo]:
    videos: dict[int, VideoInfo] = {}
    if not isinstance(data.get("videos"), list):
        raise InputError("missing the 'videos' list", source=source, field="videos")
    for i, v in enumerate(data["videos"]):
        vid = _int(v, "id", source=source, record_id=f"videos[{i}]")
        length = _int(v, "length", source=source, record_id=f"videos[{i}]", optional=True)
        if length is None:
            names = v.get("file_names")
            if not isinstance(names, list):
                raise InputError("needs 'length' or 'file_names'", source=source,
                                 record=f"videos[{i}]", field="length")
            length = len(names)
        videos[vid] = VideoInfo(vid, _int(v, "height", source=source, record_id=f"videos[{i}]"),
                                _int(v, "width", source=source, record_id=f"videos[{i}]"), length)
    return videos


def _per_track(records: list, videos: dict[int, VideoInfo], *, role: Role,
               source: str, require_score: bool = False) -> list[Track]:
    tracks = []
    for i, ann in enumerate(records):
        rid = ann.get("id", i) if isinstance(ann, dict) else i
        vid = _int(ann, "video_id", source=source, record_id=rid)
        if vid not in videos:
            raise InputError(f"video {vid} is not in the ground truth", source=source,
                             record=rid, field="video_id")
        video = videos[vid]
        segs = ann.get("segmentations")
        boxes = ann.get("bboxes")
        for name, values in (("segmentations", segs), ("bboxes", boxes)):
            if values is not None and (not isinstance(values, list) or len(values) != video.length):
                got = len(values) if isinstance(values, list) else type(values).__name__
                raise InputError(f"must list one entry per frame ({video.length}), got {got}",
                                 source=source, record=rid, field=name)
        masks = [_mask(s, video, source=source, record_id=rid, fld=f"segmentations[{t}]")
                 for t, s in enumerate(segs)] if segs is not None else [None] * video.length
        box_list = [_box(b, source=source, record_id=rid, fld=f"bboxes[{t}]")
                    for t, b in enumerate(boxes)] if boxes is not None else [None] * video.length
        given_areas = ann.get("areas") if role == "gt" else None
        if isinstance(given_areas, list) and len(given_areas) == video.length:
            areas = [None if a is None else float(a) for a in given_areas]
        else:
            areas = [_area(m, b) for m, b in zip(masks, box_list)]
        track_id = ann.get("track_id", ann.get("id", i))
        tracks.append(Track(
            video_id=vid, track_id=track_id,
            category_id=_int(ann, "category_id", source=source, record_id=rid, optional=True) or 0,
            masks=masks, boxes=box_list, areas=areas,
            score=_score(ann, role=role, source=source, record_id=rid,
                         required=require_score),
            iscrowd=bool(ann.get("iscrowd", 0)), captions=_captions(ann, source, rid), record=rid))
    return tracks


def _score(record: dict, *, role: Role, source: str, record_id: Any,
           required: bool = False) -> float:
    """A prediction's ``score``: 1.0 when absent, unless ``required`` (then an InputError)."""
    if role == "gt":
        return 1.0
    if required and "score" not in record:
        raise InputError("missing field (this metric ranks predictions by score)",
                         source=source, record=record_id, field="score")
    value = record.get("score", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InputError(f"must be a finite number, got {value!r}", source=source,
                         record=record_id, field="score")
    return float(value)


def _captions(record: dict, source: str, record_id: Any) -> list[str]:
    """``captions`` (several references) wins over ``caption``; empty strings are dropped."""
    value = record.get("captions", record.get("caption"))
    if value is None:
        return []
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InputError("must be a string or a list of strings", source=source,
                         record=record_id, field="captions" if "captions" in record else "caption")
    return [v for v in values if v]


def _frame_level(records: list, videos: dict[int, VideoInfo], images: dict[int, tuple[int, int]],
                 *, role: Role, source: str, require_score: bool = False) -> list[Track]:
    # key -> (per-frame dicts, list of scores, first record index)
    groups: dict[tuple, dict[str, Any]] = {}
    for i, ann in enumerate(records):
        image_id = _int(ann, "image_id", source=source, record_id=i)
        if image_id not in images:
            raise InputError(f"image {image_id} is not in the ground truth", source=source,
                             record=i, field="image_id")
        vid, frame = images[image_id]
        track_id = _int(ann, "track_id", source=source, record_id=i)
        category = _int(ann, "category_id", source=source, record_id=i, optional=True) or 0
        key = (vid, track_id) if role == "gt" else (vid, track_id, category)
        video = videos[vid]
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"masks": [None] * video.length, "boxes": [None] * video.length,
                                   "areas": [None] * video.length, "scores": [],
                                   "category": category, "captions": [], "record": i,
                                   "iscrowd": False}
        elif role == "gt" and group["category"] != category:
            raise InputError(f"track {track_id} of video {vid} changes category "
                             f"({group['category']} -> {category})", source=source, record=i,
                             field="category_id")
        if group["masks"][frame] is not None or group["boxes"][frame] is not None:
            raise InputError(f"track {track_id} has two entries on image {image_id}",
                             source=source, record=i, field="track_id")
        mask = _mask(ann.get("segmentation"), video, source=source, record_id=i,
                     fld="segmentation")
        box = _box(ann.get("bbox"), source=source, record_id=i, fld="bbox")
        if mask is None and box is None:
            raise InputError("needs 'segmentation' or 'bbox'", source=source, record=i,
                             field="segmentation")
        group["masks"][frame], group["boxes"][frame] = mask, box
        given = ann.get("area") if role == "gt" else None
        group["areas"][frame] = float(given) if isinstance(given, (int, float)) else _area(mask, box)
        group["scores"].append(_score(ann, role=role, source=source, record_id=i,
                                      required=require_score))
        group["iscrowd"] |= bool(ann.get("iscrowd", 0))
        for caption in _captions(ann, source, i):
            if caption not in group["captions"]:
                group["captions"].append(caption)
    return [Track(video_id=key[0], track_id=key[1], category_id=g["category"], masks=g["masks"],
                  boxes=g["boxes"], areas=g["areas"], score=float(np.mean(g["scores"])),
                  iscrowd=g["iscrowd"], captions=g["captions"], record=g["record"])
            for key, g in sorted(groups.items(), key=lambda kv: kv[1]["record"])]


def load_tracks(src: Any, *, role: Role, gt: TrackSet | None = None,
                require_score: bool = False) -> TrackSet:
    """Read ground truth (``role="gt"``) or predictions (``role="pred"``, needs ``gt``) as tracks.

    A prediction without ``score`` scores 1.0 (masklets answering a GT object need none);
    ``require_score=True`` (track mAP, which ranks by score) refuses it instead.

    ``src`` is a path, a parsed dict (ground truth; predictions in a dict use its
    ``annotations``) or a list (predictions). Bad input raises ``InputError`` naming the file,
    record and field.

    Example:
        >>> gt = load_tracks({"videos": [{"id": 1, "height": 2, "width": 2, "length": 1}],
        ...                   "annotations": [{"id": 1, "video_id": 1, "category_id": 1,
        ...                                    "bboxes": [[0, 0, 1, 1]]}]}, role="gt")
        >>> pred = load_tracks([{"video_id": 1, "category_id": 1, "score": 0.9,
        ...                      "bboxes": [[0, 0, 1, 1]]}], role="pred", gt=gt)
        >>> pred.tracks[0].score
        0.9
    """
    what = "ground truth" if role == "gt" else "predictions"
    source = _source_name(src, f"<{what}>")
    data = read_json(src, what=what)[0] if isinstance(src, (str, os.PathLike)) else src
    if role == "gt":
        if not isinstance(data, dict):
            raise InputError("ground truth must be a JSON object", source=source)
        videos = _read_videos(data, source)
        records = data.get("annotations")
        if not isinstance(records, list):
            raise InputError("missing the 'annotations' list", source=source, field="annotations")
        categories = {c["id"]: c for c in data.get("categories", []) if isinstance(c, dict)
                      and "id" in c}
        if "images" in data:
            images = {}
            for i, img in enumerate(data["images"]):
                vid = _int(img, "video_id", source=source, record_id=f"images[{i}]")
                frame = _int(img, "frame_index", source=source, record_id=f"images[{i}]")
                if vid not in videos or not 0 <= frame < videos[vid].length:
                    raise InputError(f"frame {frame} of video {vid} is not in 'videos'",
                                     source=source, record=f"images[{i}]", field="frame_index")
                images[_int(img, "id", source=source, record_id=f"images[{i}]")] = (vid, frame)
            tracks = _frame_level(records, videos, images, role="gt", source=source)
        else:
            images = {}
            tracks = _per_track(records, videos, role="gt", source=source)
        return TrackSet(source, videos, tracks, categories, images)

    if gt is None:
        raise ValueError("reading predictions needs the ground truth TrackSet (gt=...)")
    if isinstance(data, dict):
        data = data.get("annotations")
    if not isinstance(data, list):
        raise InputError("predictions must be a JSON list (or an object with 'annotations')",
                         source=source)
    frame_level = bool(data) and isinstance(data[0], dict) and "image_id" in data[0]
    if frame_level and not gt.images:
        raise InputError("frame-level predictions (with image_id) need COCO-video ground truth",
                         source=source, record=0, field="image_id")
    tracks = (_frame_level(data, gt.videos, gt.images, role="pred", source=source,
                           require_score=require_score) if frame_level
              else _per_track(data, gt.videos, role="pred", source=source,
                              require_score=require_score))
    return TrackSet(source, gt.videos, tracks, gt.categories, gt.images)
