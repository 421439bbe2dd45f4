"""Per-track predictions (YouTube-VIS style, MaskCaptioner's ``results.json``) -> the per-frame
prediction list the scorer reads.

Input records: ``{video_id, score, category_id, segmentations: [RLE | polygon | null] per
frame, bboxes (optional): [[x, y, w, h] | null] per frame, caption}``. Each record is one
track: it gets ``track_id`` 1.. in input order and yields one record per frame where it has a
box or a mask (box = ``bboxes[i]`` when given, else the mask's tight box).

Frame mapping: by default position ``i`` of a track is the GT frame with ``frame_index == i``
and the lengths must agree. For sparse benchmarks (VLN: 3 annotated frames, inference on a
denser window) pass ``frames``: the YouTube-VIS style video list the model ran on
(``{"videos": [{"id", "file_names"}]}``); each position is matched to the GT image with the
same file name and positions that are not GT frames are dropped, which is the sparse-frame
filtering used for VLN.

Example:
    >>> gt = {"videos": [{"id": 1, "height": 2, "width": 2}],
    ...       "images": [{"id": 5, "video_id": 1, "frame_index": 0, "file_name": "a/0.jpg"}]}
    >>> convert_predictions([{"video_id": 1, "score": 0.9, "category_id": 1, "caption": "x",
    ...                       "segmentations": [None], "bboxes": [[0, 0, 1, 1]]}], gt)
    [{'image_id': 5, 'video_id': 1, 'track_id': 1, 'category_id': 1, 'bbox': [0.0, 0.0, 1.0, 1.0], 'score': 0.9, 'caption': 'x'}]
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

from benchmark.datasets.common import (
    frame_geometry,
    get_field,
    get_list,
    load_json,
    number,
    posix_path,
    progress,
)
from benchmark.errors import InputError


def _frame_maps(gt: dict[str, Any], frames: dict[str, Any] | None, gt_source: str,
                frames_source: str) -> dict[int, dict[int, int]]:
    """For each video, prediction position -> GT image id."""
    by_video: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for image in get_list(gt, "images", source=gt_source, record_id=None):
        by_video[image["video_id"]].append(image)
    maps: dict[int, dict[int, int]] = {}
    if frames is None:
        for video_id, images in by_video.items():
            maps[video_id] = {img["frame_index"]: img["id"] for img in images}
        return maps
    for index, video in enumerate(get_list(frames, "videos", source=frames_source,
                                           record_id=None)):
        video_id = get_field(video, "id", source=frames_source, record_id=index, kind=int)
        if video_id not in by_video:
            continue
        gt_ids = {posix_path(img["file_name"]): img["id"] for img in by_video[video_id]}
        names = get_list(video, "file_names", source=frames_source, record_id=index)
        mapping = {i: gt_ids[posix_path(n)] for i, n in enumerate(names)
                   if posix_path(n) in gt_ids}
        if len(mapping) != len(gt_ids):
            missing = sorted(set(gt_ids) - {posix_path(n) for n in names})
            raise InputError(f"GT frames {missing[:3]} are not among the video's file names",
                             source=frames_source, record=index, field="file_names")
        maps[video_id] = mapping
    return maps


def convert_predictions(pred: str | os.PathLike[str] | list[dict[str, Any]],
                        gt: str | os.PathLike[str] | dict[str, Any], *,
                        frames: str | os.PathLike[str] | dict[str, Any] | None = None,
                        show_progress: bool = True) -> list[dict[str, Any]]:
    """Turn per-track predictions into per-frame prediction records with a track id each."""
    pred_source = str(pred) if not isinstance(pred, list) else "predictions"
    gt_source = str(gt) if not isinstance(gt, dict) else "ground truth"
    tracks = load_json(pred) if not isinstance(pred, list) else pred
    gt_data = load_json(gt) if not isinstance(gt, dict) else gt
    frames_source = str(frames) if frames is not None and not isinstance(frames, dict) else "frames"
    frames_data = load_json(frames) if frames is not None and not isinstance(frames, dict) else frames
    if not isinstance(tracks, list):
        raise InputError("expected a list of per-track predictions", source=pred_source)
    maps = _frame_maps(gt_data, frames_data, gt_source, frames_source)
    sizes = {v["id"]: (v["height"], v["width"])
             for v in get_list(gt_data, "videos", source=gt_source, record_id=None)}
    out = []
    for track_id, track in enumerate(progress(tracks, desc="prediction tracks",
                                              enabled=show_progress), start=1):
        index = track_id - 1
        video_id = get_field(track, "video_id", source=pred_source, record_id=index, kind=int)
        if video_id not in maps:
            raise InputError(f"video {video_id} is not in the ground truth", source=pred_source,
                             record=index, field="video_id")
        mapping = maps[video_id]
        height, width = sizes[video_id]
        segmentations = get_field(track, "segmentations", source=pred_source, record_id=index,
                                  kind=list, optional=True)
        bboxes = get_field(track, "bboxes", source=pred_source, record_id=index, kind=list,
                           optional=True)
        if segmentations is None and bboxes is None:
            raise InputError("a track needs segmentations or bboxes", source=pred_source,
                             record=index, field="segmentations")
        length = len(segmentations if segmentations is not None else bboxes)
        if bboxes is not None and segmentations is not None and len(bboxes) != length:
            raise InputError(f"{len(bboxes)} boxes for {length} masks", source=pred_source,
                             record=index, field="bboxes")
        if frames_data is None and length != len(mapping):
            raise InputError(f"{length} frames, the GT video has {len(mapping)}",
                             source=pred_source, record=index, field="segmentations")
        score = number(get_field(track, "score", source=pred_source, record_id=index),
                       source=pred_source, record_id=index, field="score")
        caption = get_field(track, "caption", source=pred_source, record_id=index, kind=str,
                            optional=True) or ""
        category_id = get_field(track, "category_id", source=pred_source, record_id=index,
                                kind=int, optional=True) or 1
        for position in range(length):
            if position not in mapping:
                continue  # not a GT frame (sparse benchmarks)
            geometry = frame_geometry(segmentations, bboxes, position, height, width,
                                      source=pred_source, record_id=index)
            if geometry is None:
                continue
            box, rle = geometry
            record = {"image_id": mapping[position], "video_id": video_id, "track_id": track_id,
                      "category_id": category_id, "bbox": box}
            if rle is not None:
                record["segmentation"] = rle
            record.update(score=score, caption=caption)
            out.append(record)
    return out
