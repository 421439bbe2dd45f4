"""What every dataset converter needs: reading source files with clear errors, mask
encodings, boxes from masks, building the COCO-video ground truth and writing it atomically.

The converters in this package own the dataset-specific rules; this module owns the shared
mechanics so that there is exactly one implementation of each.

Example:
    >>> builder = GroundTruthBuilder(categories=[{"id": 1, "name": "person"}])
    >>> vid, image_ids = builder.add_video(name="v", height=4, width=6, file_names=["a.jpg"])
    >>> _ = builder.add_annotation(image_id=image_ids[0], track_id=1, category_id=1,
    ...                            bbox=[0, 0, 2, 2], caption="a person")
    >>> gt = builder.to_dict(description="demo")
    >>> (len(gt["videos"]), len(gt["images"]), gt["annotations"][0]["area"])
    (1, 1, 4.0)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from tqdm import tqdm

from benchmark.errors import InputError
from benchmark.structures import masks

T = TypeVar("T")

# Inputs with at least this many items get a progress bar; smaller ones finish instantly.
PROGRESS_MIN_ITEMS = 50


def load_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON source file, turning a missing or malformed file into an ``InputError``.

    Example:
        >>> load_json("/no/such/file.json")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        benchmark.errors.InputError: /no/such/file.json: file not found
    """
    path = Path(path)
    try:
        with path.open("r", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise InputError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("expected a JSON file, found a folder", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", source=str(path)
        ) from None
    except UnicodeDecodeError:
        raise InputError("not a UTF-8 text file", source=str(path)) from None


def get_field(
    record: Any,
    name: str,
    *,
    source: str,
    record_id: int | str | None,
    kind: type | tuple[type, ...] | None = None,
    optional: bool = False,
) -> Any:
    """Return ``record[name]``, raising an ``InputError`` naming file, record and field when the
    record is not an object, the field is missing (unless ``optional``) or has the wrong type.

    Booleans are refused where numbers are expected, because JSON ``true`` is never a valid
    id or coordinate.

    Example:
        >>> get_field({"id": 3}, "id", source="gt.json", record_id=0, kind=int)
        3
    """
    if not isinstance(record, dict):
        raise InputError(
            f"expected an object, got {type(record).__name__}", source=source, record=record_id
        )
    if name not in record or record[name] is None:
        if optional:
            return None
        raise InputError("missing field", source=source, record=record_id, field=name)
    value = record[name]
    if kind is not None:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise InputError(
                f"expected {names}, got {type(value).__name__}",
                source=source,
                record=record_id,
                field=name,
            )
    return value


def get_list(record: Any, name: str, *, source: str, record_id: int | str | None) -> list[Any]:
    """``get_field`` for a required JSON array."""
    return get_field(record, name, source=source, record_id=record_id, kind=list)


def number(value: Any, *, source: str, record_id: int | str | None, field: str) -> float:
    """Check that ``value`` is a finite JSON number and return it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InputError(f"expected a finite number, got {value!r}", source=source,
                         record=record_id, field=field)
    return float(value)


def xywh(value: Any, *, source: str, record_id: int | str | None, field: str) -> list[float]:
    """Validate an ``[x, y, w, h]`` box (finite numbers, non-negative size)."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise InputError(f"expected [x, y, w, h], got {value!r}", source=source,
                         record=record_id, field=field)
    box = [number(v, source=source, record_id=record_id, field=field) for v in value]
    if box[2] < 0 or box[3] < 0:
        raise InputError(f"negative box size in {value!r}", source=source, record=record_id,
                         field=field)
    return box


def frame_geometry(segmentations: list | None, bboxes: list | None, frame: int, height: int,
                   width: int, *, source: str, record_id: int | str | None
                   ) -> tuple[list[float], dict[str, Any] | None] | None:
    """Box and mask of a per-track record on one frame: the given box wins, else the mask's
    tight box; ``None`` when the object is absent (neither given).

    Example:
        >>> frame_geometry([[[1, 1, 3, 1, 3, 2, 1, 2]]], None, 0, 4, 4, source="x", record_id=0)[0]
        [1.0, 1.0, 2.0, 1.0]
    """
    rle = None
    if segmentations is not None:
        rle = to_rle(segmentations[frame], height, width, source=source, record_id=record_id,
                     field=f"segmentations[{frame}]")
    box = bboxes[frame] if bboxes is not None else None
    if box is not None:
        return xywh(box, source=source, record_id=record_id, field=f"bboxes[{frame}]"), rle
    if rle is not None:
        return rle_bbox(rle), rle
    return None


def posix_path(path: str) -> str:
    """Normalise a file name written on Windows (``00001\\\\00000.jpg``) to forward slashes.

    Example:
        >>> posix_path("00001\\\\00000.jpg")
        '00001/00000.jpg'
    """
    return path.replace("\\", "/")


def to_rle(
    segmentation: Any,
    height: int,
    width: int,
    *,
    source: str,
    record_id: int | str | None,
    field: str,
) -> dict[str, Any] | None:
    """Convert any of the four segmentation encodings to compressed RLE ``{size, counts: str}``
    (the JSON form), with errors naming the file, record and field.

    The encoding rules are :func:`benchmark.structures.masks.to_rle`'s; this wrapper adds what
    a converter needs on top: ``None`` (object absent) returns ``None``, an RLE whose ``size``
    differs from the frame is refused (the scorer would compare masks of different frames),
    and compressed counts are decoded once so that a corrupt string fails here, next to the
    file that holds it, rather than in the scorer.

    Example:
        >>> to_rle({"size": [2, 2], "counts": [1, 2, 1]}, 2, 2, source="x", record_id=0,
        ...        field="segmentation")
        {'size': [2, 2], 'counts': '121'}
    """

    def fail(message: str) -> InputError:
        return InputError(message, source=source, record=record_id, field=field)

    if segmentation is None:
        return None
    try:
        rle = masks.to_rle(segmentation, height, width)
    except ValueError as exc:
        raise fail(str(exc)) from None
    if list(rle["size"]) != [height, width]:
        raise fail(f"RLE size {list(rle['size'])} differs from the frame size {[height, width]}")
    if isinstance(segmentation, dict) and not isinstance(segmentation["counts"], list):
        try:
            masks.mask_area(rle)
        except Exception:  # pycocotools raises bare errors on corrupt counts
            raise fail("compressed RLE counts cannot be decoded") from None
    return {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")}


def rle_area(rle: dict[str, Any]) -> float:
    """Pixel count of a compressed RLE mask (``counts`` a string, as :func:`to_rle` returns)."""
    return masks.mask_area(masks.to_rle(rle))


def rle_bbox(rle: dict[str, Any]) -> list[float]:
    """Tight ``[x, y, w, h]`` box of a compressed RLE mask (all zeros for an empty mask).

    Example:
        >>> rle = to_rle([[1, 1, 3, 1, 3, 2, 1, 2]], 4, 4, source="x", record_id=0, field="s")
        >>> rle_bbox(rle)
        [1.0, 1.0, 2.0, 1.0]
    """
    return [float(v) for v in masks.mask_to_box(masks.to_rle(rle))]


def progress(items: Iterable[T], *, desc: str, total: int | None = None,
             enabled: bool = True) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar when enabled and the input is large enough to wait for."""
    if total is None and isinstance(items, Sequence):
        total = len(items)
    show = enabled and (total is None or total >= PROGRESS_MIN_ITEMS)
    return iter(tqdm(items, desc=desc, total=total, unit="video", disable=not show))


class GroundTruthBuilder:
    """Collects videos, frames and boxes and emits the benchmark's COCO-video ground truth.

    Video, image and annotation ids are assigned 1.. in insertion order unless a converter
    passes the ids its published pipeline used; duplicates are refused because the scorer keys
    frames and boxes by id.

    Example:
        >>> b = GroundTruthBuilder(categories=[{"id": 1, "name": "object"}])
        >>> b.add_video(name="clip", height=2, width=2, file_names=["0.jpg", "1.jpg"],
        ...             video_id=7, image_ids=[70, 71])
        (7, [70, 71])
    """

    def __init__(self, *, categories: list[dict[str, Any]]) -> None:
        self.categories = categories
        self._category_ids = {c["id"] for c in categories}
        self.videos: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self._image_index: dict[int, dict[str, Any]] = {}
        self._video_ids: set[int] = set()

    def add_video(
        self,
        *,
        name: str,
        height: int,
        width: int,
        file_names: Sequence[str],
        video_id: int | None = None,
        image_ids: Sequence[int] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[int, list[int]]:
        """Add a video and one image per frame (frame_index = position in ``file_names``);
        return the video id and the image ids in frame order."""
        if video_id is None:
            video_id = len(self.videos) + 1
        if video_id in self._video_ids:
            raise InputError(f"video id {video_id} used twice", record=name, field="id")
        if image_ids is None:
            start = len(self.images) + 1
            image_ids = list(range(start, start + len(file_names)))
        if len(image_ids) != len(file_names):
            raise ValueError("one image id per file name")
        self._video_ids.add(video_id)
        video = {"id": video_id, "name": name, "height": int(height), "width": int(width),
                 "length": len(file_names)}
        if extra:
            video.update(extra)
        self.videos.append(video)
        for index, (image_id, file_name) in enumerate(zip(image_ids, file_names)):
            if image_id in self._image_index:
                raise InputError(f"image id {image_id} used twice", record=name, field="image_id")
            image = {"id": int(image_id), "video_id": video_id, "frame_index": index,
                     "file_name": file_name, "height": int(height), "width": int(width)}
            self.images.append(image)
            self._image_index[image["id"]] = image
        return video_id, [int(i) for i in image_ids]

    def add_annotation(
        self,
        *,
        image_id: int,
        track_id: int,
        category_id: int,
        bbox: Sequence[float],
        segmentation: dict[str, Any] | None = None,
        caption: str = "",
        area: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add one box (and mask) of ``track_id`` on frame ``image_id``; area defaults to the
        mask's pixel count, else the box area."""
        image = self._image_index.get(image_id)
        if image is None:
            raise ValueError(f"image {image_id} was not added")
        if category_id not in self._category_ids:
            raise InputError(f"category {category_id} is not among the categories",
                             record=track_id, field="category_id")
        if area is None:
            area = rle_area(segmentation) if segmentation is not None else bbox[2] * bbox[3]
        annotation = {
            "id": len(self.annotations) + 1,
            "image_id": image_id,
            "video_id": image["video_id"],
            "track_id": int(track_id),
            "category_id": int(category_id),
            "bbox": [float(v) for v in bbox],
            "area": float(area),
            "iscrowd": 0,
            "caption": caption,
        }
        if segmentation is not None:
            annotation["segmentation"] = segmentation
        if extra:
            annotation.update(extra)
        self.annotations.append(annotation)
        return annotation

    def to_dict(self, *, description: str, **info: Any) -> dict[str, Any]:
        """The ground truth as a JSON-ready dict (``info`` records how it was built)."""
        return {
            "info": {"description": description, **info},
            "videos": self.videos,
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories,
        }
