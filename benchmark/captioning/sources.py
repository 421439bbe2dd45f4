"""Read segmentation datasets into per-object captioning targets, and write them back captioned.

Three source layouts are understood (see ``/work/shared/spec/dataset-formats.md``):

- ``ytvis``: YouTube-VIS / LV-VIS per-track JSON (``videos[].file_names``, ``annotations[]``
  with per-frame ``segmentations`` and/or ``bboxes``). Output = LV-VISCap: each annotation
  gains ``caption`` and per-frame ``bboxes``.
- ``lvis``: LVIS / COCO instances (``images``, ``annotations`` with ``segmentation`` and
  ``bbox``). Every image is a 1-frame video. Output = LVISCap: each annotation gains
  ``caption``.
- ``sav``: one SA-V video JSON (``video_id``, ``masklet`` = per annotated frame, per object,
  an RLE). SA-V has no categories. Output: the same dict with ``captions`` =
  ``{masklet index: caption}``. The frame-file naming of SA-V is not verified: annotated frame
  ``i`` is read from ``{frames_root}/{video_id}/{i * sav_frame_stride:05d}.jpg``.

Example:
    >>> data = {"videos": [{"id": 1, "file_names": ["v/0.jpg"], "height": 4, "width": 4,
    ...          "length": 1}], "annotations": [{"id": 7, "video_id": 1, "category_id": 1,
    ...          "bboxes": [[0, 0, 2, 2]]}], "categories": [{"id": 1, "name": "cat"}]}
    >>> [t.category for t in load_targets(data, frames_root=".", dataset="demo")]
    ['cat']
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from benchmark.datasets.common import load_json as read_json
from benchmark.datasets.common import posix_path, rle_area, rle_bbox, to_rle
from benchmark.errors import InputError

__all__ = ["FORMATS", "Target", "add_captions", "detect_format", "load_targets", "read_json"]

Box = tuple[float, float, float, float]  # x, y, w, h in pixels

FORMATS = ("ytvis", "lvis", "sav")


@dataclass(frozen=True)
class Target:
    """One object (track or image annotation) to caption.

    ``boxes``, ``rles`` and ``areas`` have one entry per frame of the video (``None`` where the
    object is absent); ``rles`` are compressed RLEs or ``None`` for box-only annotations.
    """

    dataset: str
    annotation_id: str
    video_id: str
    frame_paths: tuple[Path, ...]
    boxes: tuple[Box | None, ...]
    rles: tuple[dict | None, ...]
    areas: tuple[float | None, ...]
    category: str | None
    other_categories: tuple[str, ...]
    width: int
    height: int

    @property
    def present_frames(self) -> list[int]:
        """Indices of the frames where the object has a box."""
        return [i for i, box in enumerate(self.boxes) if box is not None]


def detect_format(data: Mapping[str, Any]) -> str:
    """Guess the source layout of a loaded JSON dict (``ytvis``, ``lvis`` or ``sav``)."""
    if "masklet" in data:
        return "sav"
    videos = data.get("videos")
    if isinstance(videos, list) and videos and "file_names" in videos[0]:
        return "ytvis"
    if "images" in data and "annotations" in data:
        return "lvis"
    raise InputError(
        "cannot tell the dataset layout: expected YouTube-VIS 'videos[].file_names', "
        "LVIS/COCO 'images' + 'annotations', or SA-V 'masklet'"
    )


def _box_and_area(rle: dict | None, box: Any, *, where: dict) -> tuple[Box | None, float | None]:
    # Masks are the source of truth (MaskCaptioner derives boxes from masks); a given box is
    # only used for box-only annotations.
    if rle is not None:
        area = rle_area(rle)
        if area > 0:
            return tuple(rle_bbox(rle)), area
        return None, None
    if box is None:
        return None, None
    if not (isinstance(box, (list, tuple)) and len(box) == 4):
        raise InputError(
            "a box must be [x, y, w, h]", source=where["source"], record=where["record_id"], field=where["field"]
        )
    x, y, w, h = (float(v) for v in box)
    if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
        return None, None
    return (x, y, w, h), w * h


def _frame_path(frames_root: Path, name: str) -> Path:
    return frames_root / posix_path(name)


def _category_names(data: Mapping[str, Any], source: str) -> dict[Any, str]:
    names = {}
    for i, cat in enumerate(data.get("categories", [])):
        if "id" not in cat or "name" not in cat:
            raise InputError("a category needs 'id' and 'name'", source=source, record=i, field="categories")
        names[cat["id"]] = str(cat["name"])
    return names


def _others(names: list[str | None], own: int) -> tuple[str, ...]:
    # "person (2), bicycle" reads better than the same name repeated.
    counts = Counter(n for i, n in enumerate(names) if i != own and n)
    return tuple(f"{n} ({c})" if c > 1 else n for n, c in counts.items())


def load_targets(
    data: Mapping[str, Any],
    *,
    frames_root: str | Path,
    dataset: str,
    fmt: str | None = None,
    source: str = "<dataset>",
    sav_frame_stride: int = 4,
) -> list[Target]:
    """Turn a loaded dataset dict into one ``Target`` per object (annotations without any box
    or mask are skipped: there is nothing to show).

    ``frames_root`` is the folder the frame file names are relative to.
    """
    fmt = fmt or detect_format(data)
    root = Path(frames_root)
    if fmt == "ytvis":
        return _ytvis_targets(data, root, dataset, source)
    if fmt == "lvis":
        return _lvis_targets(data, root, dataset, source)
    if fmt == "sav":
        return _sav_targets(data, root, dataset, source, sav_frame_stride)
    raise InputError(f"unknown dataset format {fmt!r}; expected one of {FORMATS}", source=source)


def _ytvis_targets(data: Mapping[str, Any], root: Path, dataset: str, source: str) -> list[Target]:
    cats = _category_names(data, source)
    videos = {}
    for i, video in enumerate(data["videos"]):
        for field in ("id", "file_names", "height", "width"):
            if field not in video:
                raise InputError("missing", source=source, record=i, field=f"videos.{field}")
        videos[video["id"]] = video
    by_video: dict[Any, list[tuple[int, dict]]] = {}
    for i, ann in enumerate(data["annotations"]):
        if ann.get("video_id") not in videos:
            raise InputError("unknown video id", source=source, record=ann.get("id", i), field="video_id")
        by_video.setdefault(ann["video_id"], []).append((i, ann))

    targets = []
    for video_id, anns in by_video.items():
        video = videos[video_id]
        h, w, n = int(video["height"]), int(video["width"]), len(video["file_names"])
        paths = tuple(_frame_path(root, name) for name in video["file_names"])
        names = [cats.get(ann.get("category_id")) for _, ann in anns]
        for k, (i, ann) in enumerate(anns):
            record = ann.get("id", i)
            segs = ann.get("segmentations") or [None] * n
            given = ann.get("bboxes") or [None] * n
            if len(segs) != n or len(given) != n:
                raise InputError(
                    f"expected one entry per frame ({n})", source=source, record=record,
                    field="segmentations" if len(segs) != n else "bboxes",
                )
            boxes, rles, areas = [], [], []
            for f in range(n):
                where = {"source": source, "record_id": record, "field": f"segmentations[{f}]"}
                rle = to_rle(segs[f], h, w, **where)
                box, area = _box_and_area(rle, given[f], where={**where, "field": f"bboxes[{f}]"})
                boxes.append(box)
                rles.append(rle)
                areas.append(area)
            if not any(b is not None for b in boxes):
                continue
            targets.append(Target(
                dataset=dataset, annotation_id=str(ann.get("id", i)), video_id=str(video_id),
                frame_paths=paths, boxes=tuple(boxes), rles=tuple(rles), areas=tuple(areas),
                category=names[k], other_categories=_others(names, k), width=w, height=h,
            ))
    return targets


def _image_file_name(image: Mapping[str, Any]) -> str:
    if image.get("file_name"):
        return str(image["file_name"])
    # LVIS: the file name is the last two parts of coco_url ("train2017/000000391895.jpg").
    return "/".join(str(image["coco_url"]).split("/")[-2:])


def _lvis_targets(data: Mapping[str, Any], root: Path, dataset: str, source: str) -> list[Target]:
    cats = _category_names(data, source)
    images = {}
    for i, image in enumerate(data["images"]):
        if "id" not in image or not (image.get("file_name") or image.get("coco_url")):
            raise InputError("an image needs 'id' and 'file_name' or 'coco_url'", source=source, record=i, field="images")
        images[image["id"]] = image
    by_image: dict[Any, list[tuple[int, dict]]] = {}
    for i, ann in enumerate(data["annotations"]):
        if ann.get("image_id") not in images:
            raise InputError("unknown image id", source=source, record=ann.get("id", i), field="image_id")
        by_image.setdefault(ann["image_id"], []).append((i, ann))

    targets = []
    for image_id, anns in by_image.items():
        image = images[image_id]
        h, w = int(image["height"]), int(image["width"])
        path = (_frame_path(root, _image_file_name(image)),)
        names = [cats.get(ann.get("category_id")) for _, ann in anns]
        for k, (i, ann) in enumerate(anns):
            where = {"source": source, "record_id": ann.get("id", i), "field": "segmentation"}
            rle = to_rle(ann.get("segmentation") or None, h, w, **where)
            box, area = _box_and_area(rle, ann.get("bbox"), where={**where, "field": "bbox"})
            if box is None:
                continue
            targets.append(Target(
                dataset=dataset, annotation_id=str(ann.get("id", i)), video_id=str(image_id),
                frame_paths=path, boxes=(box,), rles=(rle,), areas=(area,), category=names[k],
                other_categories=_others(names, k), width=w, height=h,
            ))
    return targets


def _sav_targets(data: Mapping[str, Any], root: Path, dataset: str, source: str, stride: int) -> list[Target]:
    for field in ("video_id", "video_height", "video_width", "masklet"):
        if field not in data:
            raise InputError("missing", source=source, field=field)
    h, w = int(data["video_height"]), int(data["video_width"])
    video_id = str(data["video_id"])
    frames = data["masklet"]
    n_obj = max((len(f) for f in frames), default=0)
    paths = tuple(root / video_id / f"{i * stride:05d}.jpg" for i in range(len(frames)))
    targets = []
    for j in range(n_obj):
        boxes, rles, areas = [], [], []
        for f, objects in enumerate(frames):
            seg = objects[j] if j < len(objects) else None
            where = {"source": source, "record_id": j, "field": f"masklet[{f}]"}
            rle = to_rle(seg, h, w, **where)
            box, area = _box_and_area(rle, None, where=where)
            boxes.append(box)
            rles.append(rle)
            areas.append(area)
        if any(b is not None for b in boxes):
            targets.append(Target(
                dataset=dataset, annotation_id=f"{video_id}/{j}", video_id=video_id,
                frame_paths=paths, boxes=tuple(boxes), rles=tuple(rles), areas=tuple(areas),
                category=None, other_categories=(), width=w, height=h,
            ))
    return targets


def add_captions(
    data: Mapping[str, Any], captions: Mapping[str, str], *, fmt: str | None = None
) -> dict:
    """Return a deep copy of ``data`` with ``caption`` added per annotation (LV-VISCap /
    LVISCap layout; ``""`` where no caption was obtained). YouTube-VIS annotations also get
    per-frame ``bboxes`` derived from their masks when they had none.

    ``captions`` maps ``Target.annotation_id`` to the caption.
    """
    fmt = fmt or detect_format(data)
    out = copy.deepcopy(dict(data))
    if fmt == "sav":
        prefix = f"{out['video_id']}/"
        out["captions"] = {
            key[len(prefix):]: text for key, text in captions.items() if key.startswith(prefix)
        }
        return out
    videos = {v["id"]: v for v in out.get("videos", [])}
    for i, ann in enumerate(out["annotations"]):
        ann["caption"] = captions.get(str(ann.get("id", i)), "")
        if fmt == "ytvis" and not ann.get("bboxes") and ann.get("segmentations"):
            video = videos[ann["video_id"]]
            h, w = int(video["height"]), int(video["width"])
            boxes = []
            for f, seg in enumerate(ann["segmentations"]):
                where = {"source": "<dataset>", "record_id": ann.get("id", i), "field": f"segmentations[{f}]"}
                box, _ = _box_and_area(to_rle(seg, h, w, **where), None, where=where)
                boxes.append(list(box) if box else None)
            ann["bboxes"] = boxes
    return out
