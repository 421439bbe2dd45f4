"""Video Localized Narratives (UVO subset) -> DVOC ground truth, as DVOC-DS built it.

Sources: the VNG ``meta_expressions.json`` (narratives and the expressions that ground their
noun phrases to UVO objects), the UVO sparse video annotations (``UVO_sparse_{split}_video.json``)
and VNG's ``extra_masks.json`` (objects UVO lacks; appended to the UVO annotations).

Construction rules [quirks of the published pipeline, reproduced on purpose]:

- Videos: the keys of ``meta_expressions["videos"]`` (YouTube ids) in sorted order; the video
  id is UVO's ``id`` for that ``ytid``. Only the first 3 UVO frames (the annotated ones) are
  kept: ``image_id = video_id * 3 + i``.
- Per frame, expressions are visited in sorted *string* key order ("0", "1", "10", "2"...).
  An actor appears at most once per frame: only its first expression adds a box, later ones
  are skipped.
- Caption: the actor's full narrative goes to the first expression (in that order) with
  ``noun_phrase_end_idx <= len(actor_name) + 5`` whose actor is not "background"; later
  expressions get "". The caption is consumed even when that expression is skipped (actor
  already seen, or no box on this frame), so such an actor stays uncaptioned on that frame.
- Box: UVO ``bboxes[i]`` when the object has ``bboxes``, else the tight box of its mask; an
  object with a null box/mask on a frame is absent there (its actor still counts as seen).
- Track ids: 1.. over the sorted annotation ids of UVO + extra masks. One category ("object").

Example:
    >>> gt = convert_vln(expressions="meta_expressions.json", uvo="UVO_sparse_val_video.json",
    ...                  extra_masks="extra_masks.json")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from benchmark.datasets.common import (
    GroundTruthBuilder,
    get_field,
    get_list,
    load_json,
    posix_path,
    progress,
    rle_bbox,
    to_rle,
    xywh,
)
from benchmark.errors import InputError

NUM_FRAMES = 3
# Narrative text beyond the actor's name this many characters still counts as naming it.
NAME_SLACK = 5


def convert_vln(*, expressions: str | os.PathLike[str], uvo: str | os.PathLike[str],
                extra_masks: str | os.PathLike[str] | None = None,
                show_progress: bool = True) -> dict[str, Any]:
    """Build the VLN DVOC ground truth (3 frames per video, box + mask where available)."""
    meta_src, uvo_src = str(expressions), str(uvo)
    meta = load_json(expressions)
    meta_videos = get_field(meta, "videos", source=meta_src, record_id=None, kind=dict)
    uvo_data = load_json(uvo)
    objects: dict[int, tuple[dict[str, Any], str]] = {}
    sources = [(uvo_src, get_list(uvo_data, "annotations", source=uvo_src, record_id=None))]
    if extra_masks is not None:
        extra_src = str(extra_masks)
        sources.append((extra_src, get_list(load_json(extra_masks), "annotations",
                                            source=extra_src, record_id=None)))
    for src, records in sources:
        for index, ann in enumerate(records):
            obj_id = get_field(ann, "id", source=src, record_id=index, kind=int)
            if obj_id in objects:
                raise InputError(f"annotation id {obj_id} appears twice (UVO + extra masks)",
                                 source=src, record=index, field="id")
            objects[obj_id] = (ann, src)
    track_of = {obj_id: i for i, obj_id in enumerate(sorted(objects), start=1)}
    by_ytid = {}
    for index, video in enumerate(get_list(uvo_data, "videos", source=uvo_src, record_id=None)):
        by_ytid[get_field(video, "ytid", source=uvo_src, record_id=index, kind=str)] = video
    builder = GroundTruthBuilder(categories=[{"id": 1, "name": "object"}])
    for ytid in progress(sorted(meta_videos), desc="VLN videos", enabled=show_progress):
        if ytid not in by_ytid:
            raise InputError(f"video {ytid} has no UVO entry in {uvo_src}", source=meta_src,
                             record=ytid)
        _add_video(builder, ytid, meta_videos[ytid], by_ytid[ytid], objects, track_of,
                   meta_src, uvo_src)
    return builder.to_dict(description="Video Localized Narratives (UVO) DVOC ground truth "
                                       "(DVOC-DS construction)")


def _add_video(builder: GroundTruthBuilder, ytid: str, entry: dict[str, Any],
               video: dict[str, Any], objects: dict[int, tuple[dict[str, Any], str]],
               track_of: dict[int, int], meta_src: str, uvo_src: str) -> None:
    video_id = get_field(video, "id", source=uvo_src, record_id=ytid, kind=int)
    height = get_field(video, "height", source=uvo_src, record_id=ytid, kind=int)
    width = get_field(video, "width", source=uvo_src, record_id=ytid, kind=int)
    file_names = get_list(video, "file_names", source=uvo_src, record_id=ytid)
    if len(file_names) < NUM_FRAMES:
        raise InputError(f"{len(file_names)} frames, need the {NUM_FRAMES} annotated ones",
                         source=uvo_src, record=ytid, field="file_names")
    _, image_ids = builder.add_video(
        name=ytid, height=height, width=width,
        file_names=[posix_path(f) for f in file_names[:NUM_FRAMES]], video_id=video_id,
        image_ids=[video_id * NUM_FRAMES + i for i in range(NUM_FRAMES)])
    narratives = {}
    for n in get_list(entry, "actor_narratives", source=meta_src, record_id=ytid):
        actor = get_field(n, "actor_idx", source=meta_src, record_id=ytid, kind=int)
        narratives[actor] = (get_field(n, "actor_name", source=meta_src, record_id=ytid, kind=str),
                             get_field(n, "description", source=meta_src, record_id=ytid, kind=str))
    expressions = get_field(entry, "expressions", source=meta_src, record_id=ytid, kind=dict)
    for i, image_id in enumerate(image_ids):
        used_caption: set[int] = set()
        seen: set[int] = set()
        for key in sorted(expressions):
            where = f"{ytid}/expressions/{key}"
            expression = expressions[key]
            actor = get_field(expression, "narrative_actor_idx", source=meta_src,
                              record_id=where, kind=int)
            obj_id = get_field(expression, "obj_id", source=meta_src, record_id=where, kind=int)
            end = get_field(expression, "noun_phrase_end_idx", source=meta_src, record_id=where,
                            kind=int)
            if actor not in narratives:
                raise InputError(f"actor {actor} has no narrative", source=meta_src,
                                 record=where, field="narrative_actor_idx")
            if obj_id not in objects:
                raise InputError(f"object {obj_id} is in neither UVO nor the extra masks",
                                 source=meta_src, record=where, field="obj_id")
            name, narrative = narratives[actor]
            caption = ""
            if actor not in used_caption and name != "background" and end <= len(name) + NAME_SLACK:
                caption = narrative
                used_caption.add(actor)
            if actor in seen:
                continue
            seen.add(actor)
            ann, src = objects[obj_id]
            located = _locate(ann, i, height, width, src, obj_id)
            if located is None:
                continue
            bbox, rle = located
            builder.add_annotation(image_id=image_id, track_id=track_of[obj_id], category_id=1,
                                   bbox=bbox, segmentation=rle, caption=caption)


def _locate(ann: dict[str, Any], frame: int, height: int, width: int, src: str,
            obj_id: int) -> tuple[list[float], dict[str, Any] | None] | None:
    """Box (UVO's when given, else from the mask) and mask of an object on a frame."""
    segmentations = ann.get("segmentations")
    rle = None
    if isinstance(segmentations, list) and frame < len(segmentations):
        rle = to_rle(segmentations[frame], height, width, source=src, record_id=obj_id,
                     field=f"segmentations[{frame}]")
    if "bboxes" in ann:
        bboxes = get_list(ann, "bboxes", source=src, record_id=obj_id)
        if frame >= len(bboxes) or bboxes[frame] is None:
            return None
        return xywh(bboxes[frame], source=src, record_id=obj_id, field=f"bboxes[{frame}]"), rle
    if rle is None:
        return None
    return rle_bbox(rle), rle
