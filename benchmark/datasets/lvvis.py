"""LV-VIS / LV-VISCap (YouTube-VIS style) and LVIS / LVISCap (COCO images as one-frame videos)
-> DVOC ground truth with masks.

LV-VIS rules:

- Video ids are kept; images are numbered 1.. in file order, one per ``file_names`` entry
  (Windows separators normalised to ``/``).
- Each track (annotation) becomes one box per frame where it has a mask or a box: the four
  segmentation encodings (null, polygons, uncompressed RLE, compressed RLE) are converted to
  compressed RLE; the box is the annotation's ``bboxes[i]`` when present (LV-VISCap adds them),
  else the tight box of the mask. ``track_id`` = the annotation id; caption = the track's
  ``caption`` (LV-VISCap) on every frame, else "".
- Categories are copied with their ``partition`` (0-1 base, 2-3 novel) so that base/novel
  results can be split later.

LVIS rules: every image is a video of length 1 (video id = image id = LVIS image id, file
name = the last two parts of ``coco_url``, e.g. ``val2017/000000397133.jpg``); polygons become
RLE, the LVIS ``bbox`` is kept, ``track_id`` = annotation id, caption from LVISCap else "";
``neg_category_ids`` / ``not_exhaustive_category_ids`` stay on the video, the category
``frequency`` on the category.

Example:
    >>> gt = convert_lvvis(src="lvviscap_val_instances.json")  # doctest: +SKIP
    >>> gt = convert_lvis(src="lviscap_v1_val.json")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from benchmark.datasets.common import (
    GroundTruthBuilder,
    frame_geometry,
    get_field,
    get_list,
    load_json,
    posix_path,
    progress,
    to_rle,
    xywh,
)
from benchmark.errors import InputError

LVIS_VIDEO_FIELDS = ("neg_category_ids", "not_exhaustive_category_ids")
CATEGORY_FIELDS = ("partition", "frequency", "synset")


def _categories(data: dict[str, Any], source: str) -> list[dict[str, Any]]:
    out = []
    for index, category in enumerate(get_list(data, "categories", source=source, record_id=None)):
        entry = {"id": get_field(category, "id", source=source, record_id=f"categories[{index}]",
                                 kind=int),
                 "name": get_field(category, "name", source=source,
                                   record_id=f"categories[{index}]", kind=str)}
        entry.update({k: category[k] for k in CATEGORY_FIELDS if k in category})
        out.append(entry)
    return out


def _caption(ann: dict[str, Any], source: str, record: int | str) -> str:
    caption = get_field(ann, "caption", source=source, record_id=record, kind=str, optional=True)
    return caption or ""


def convert_lvvis(*, src: str | os.PathLike[str], show_progress: bool = True) -> dict[str, Any]:
    """Build DVOC ground truth from an LV-VIS or LV-VISCap ``*_instances.json``."""
    source = str(src)
    data = load_json(src)
    builder = GroundTruthBuilder(categories=_categories(data, source))
    frames: dict[int, tuple[list[int], int, int]] = {}
    videos = get_list(data, "videos", source=source, record_id=None)
    for index, video in enumerate(progress(videos, desc="LV-VIS videos", enabled=show_progress)):
        where = f"videos[{index}]"
        file_names = get_list(video, "file_names", source=source, record_id=where)
        height = get_field(video, "height", source=source, record_id=where, kind=int)
        width = get_field(video, "width", source=source, record_id=where, kind=int)
        length = get_field(video, "length", source=source, record_id=where, kind=int,
                           optional=True)
        if length is not None and length != len(file_names):
            raise InputError(f"length {length} but {len(file_names)} file names", source=source,
                             record=where, field="length")
        if not all(isinstance(f, str) for f in file_names):
            raise InputError("file names must be strings", source=source, record=where,
                             field="file_names")
        names = [posix_path(f) for f in file_names]
        video_id, image_ids = builder.add_video(
            name=names[0].rsplit("/", 1)[0] if names else str(index), height=height,
            width=width, file_names=names,
            video_id=get_field(video, "id", source=source, record_id=where, kind=int))
        frames[video_id] = (image_ids, height, width)
    annotations = get_list(data, "annotations", source=source, record_id=None)
    for index, ann in enumerate(progress(annotations, desc="LV-VIS tracks",
                                         enabled=show_progress)):
        track_id = get_field(ann, "id", source=source, record_id=index, kind=int)
        where = f"annotations[{index}] (id {track_id})"
        video_id = get_field(ann, "video_id", source=source, record_id=where, kind=int)
        if video_id not in frames:
            raise InputError(f"unknown video {video_id}", source=source, record=where,
                             field="video_id")
        image_ids, height, width = frames[video_id]
        segmentations = get_field(ann, "segmentations", source=source, record_id=where,
                                  kind=list, optional=True) or [None] * len(image_ids)
        bboxes = get_field(ann, "bboxes", source=source, record_id=where, kind=list,
                           optional=True)
        for name, per_frame in (("segmentations", segmentations), ("bboxes", bboxes)):
            if per_frame is not None and len(per_frame) != len(image_ids):
                raise InputError(f"{len(per_frame)} entries for {len(image_ids)} frames",
                                 source=source, record=where, field=name)
        category_id = get_field(ann, "category_id", source=source, record_id=where, kind=int)
        caption = _caption(ann, source, where)
        extra = {"iscrowd": 1} if ann.get("iscrowd") else None
        for i, image_id in enumerate(image_ids):
            geometry = frame_geometry(segmentations, bboxes, i, height, width, source=source,
                                      record_id=where)
            if geometry is None:
                continue
            box, rle = geometry
            builder.add_annotation(image_id=image_id, track_id=track_id, category_id=category_id,
                                   bbox=box, segmentation=rle, caption=caption, extra=extra)
    return builder.to_dict(description="LV-VIS DVOC ground truth")


def convert_lvis(*, src: str | os.PathLike[str], show_progress: bool = True) -> dict[str, Any]:
    """Build DVOC ground truth from an LVIS v1 or LVISCap file (each image a 1-frame video)."""
    source = str(src)
    data = load_json(src)
    builder = GroundTruthBuilder(categories=_categories(data, source))
    sizes: dict[int, tuple[int, int]] = {}
    for index, image in enumerate(get_list(data, "images", source=source, record_id=None)):
        where = f"images[{index}]"
        image_id = get_field(image, "id", source=source, record_id=where, kind=int)
        height = get_field(image, "height", source=source, record_id=where, kind=int)
        width = get_field(image, "width", source=source, record_id=where, kind=int)
        url = get_field(image, "coco_url", source=source, record_id=where, kind=str,
                        optional=True)
        file_name = ("/".join(url.split("/")[-2:]) if url
                     else get_field(image, "file_name", source=source, record_id=where, kind=str))
        builder.add_video(name=file_name, height=height, width=width, file_names=[file_name],
                          video_id=image_id, image_ids=[image_id],
                          extra={k: image[k] for k in LVIS_VIDEO_FIELDS if k in image})
        sizes[image_id] = (height, width)
    annotations = get_list(data, "annotations", source=source, record_id=None)
    for index, ann in enumerate(progress(annotations, desc="LVIS annotations",
                                         enabled=show_progress)):
        ann_id = get_field(ann, "id", source=source, record_id=index, kind=int)
        where = f"annotations[{index}] (id {ann_id})"
        image_id = get_field(ann, "image_id", source=source, record_id=where, kind=int)
        if image_id not in sizes:
            raise InputError(f"unknown image {image_id}", source=source, record=where,
                             field="image_id")
        height, width = sizes[image_id]
        rle = to_rle(ann.get("segmentation"), height, width, source=source, record_id=where,
                     field="segmentation")
        bbox = xywh(get_field(ann, "bbox", source=source, record_id=where), source=source,
                    record_id=where, field="bbox")
        builder.add_annotation(
            image_id=image_id, track_id=ann_id,
            category_id=get_field(ann, "category_id", source=source, record_id=where, kind=int),
            bbox=bbox, segmentation=rle, caption=_caption(ann, source, where),
            # LVIS stores the polygon area; keep it when it is a number, else use the mask's.
            area=ann["area"] if isinstance(ann.get("area"), (int, float)) else None)
    return builder.to_dict(description="LVIS DVOC ground truth (images as 1-frame videos)")
