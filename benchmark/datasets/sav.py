"""SAV-Caption (SA-V masklets + object captions) -> DVOC ground truth.

Masks: one SA-V file per video (``{vid}_manual.json``: ``video_id, video_frame_count,
video_height, video_width, masklet`` = per annotated frame (6 fps, every 4th frame of the 24 fps
video) a list of per-object RLEs, ``masklet_id`` = the object ids in that order). An RLE that
is null or empty on a frame means the object is absent there.

Captions: the SAV-Caption release format is not verified, so the join is explicit: a JSON list
of ``{"video_id": str, "masklet_id": int, "captions": [str, ...]}`` (or ``"caption": str``),
or the mapping ``{video_id: {masklet_id: [captions]}}``. The key is (SA-V ``video_id``,
position of the object in ``masklet_id``). Objects without a caption entry stay uncaptioned;
a caption whose (video, masklet) is not in the masks is an error (a wrong join would silently
drop references).

Several references per object (val: 3 each) are all kept: ``captions`` on every box of the
track holds the full list and ``caption`` holds the first, because the CHOTA protocol scores one
reference per pair; a multi-reference CIDEr must read ``captions``.

Ids: videos 1.. in sorted ``video_id`` order; image ``file_name`` = ``{vid}/{frame:05d}.jpg``
with ``frame = 4 * k`` (24 fps numbering of the k-th annotated frame); ``track_id = video_no *
1000 + masklet_id``.

Example:
    >>> gt = convert_sav(masks=["sav_val/"], captions="sav_caption_val.json")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchmark.datasets.common import (
    GroundTruthBuilder,
    get_field,
    get_list,
    load_json,
    progress,
    rle_bbox,
    to_rle,
)
from benchmark.errors import InputError

FRAME_STRIDE = 4  # SA-V annotates every 4th frame of its 24 fps videos (6 fps)
TRACKS_PER_VIDEO_ID = 1000


def read_captions(path: str | os.PathLike[str]) -> dict[tuple[str, int], list[str]]:
    """Caption references keyed by (video_id, masklet_id), from either accepted layout."""
    source = str(path)
    data = load_json(path)
    out: dict[tuple[str, int], list[str]] = {}

    def add(video: Any, masklet: Any, refs: Any, where: str) -> None:
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise InputError("expected a non-empty list of caption strings", source=source,
                             record=where, field="captions")
        try:
            key = (str(video), int(masklet))
        except (TypeError, ValueError):
            raise InputError(f"masklet id {masklet!r} is not an integer", source=source,
                             record=where, field="masklet_id") from None
        if key in out:
            raise InputError(f"video {key[0]} masklet {key[1]} captioned twice", source=source,
                             record=where)
        out[key] = refs

    if isinstance(data, dict):
        for video, objects in data.items():
            if not isinstance(objects, dict):
                raise InputError("expected {masklet_id: [captions]}", source=source, record=video)
            for masklet, refs in objects.items():
                add(video, masklet, refs, f"{video}/{masklet}")
    elif isinstance(data, list):
        for index, entry in enumerate(data):
            video = get_field(entry, "video_id", source=source, record_id=index, kind=(str, int))
            masklet = get_field(entry, "masklet_id", source=source, record_id=index, kind=int)
            refs = entry.get("captions", entry.get("caption"))
            add(video, masklet, refs, str(index))
    else:
        raise InputError("expected a list or an object of captions", source=source)
    return out


def convert_sav(*, masks: list[str | os.PathLike[str]], captions: str | os.PathLike[str],
                show_progress: bool = True) -> dict[str, Any]:
    """Build the SAV-Caption ground truth from SA-V per-video mask files and the captions."""
    files: dict[str, Path] = {}
    for root in map(Path, masks):
        if not root.exists():
            raise InputError("SA-V annotation folder not found", source=str(root))
        candidates = [root] if root.is_file() else sorted(root.rglob("*.json"))
        for file in candidates:
            data = load_json(file)
            if isinstance(data, dict) and "masklet" in data:
                video = str(get_field(data, "video_id", source=str(file), record_id=None,
                                      kind=(str, int)))
                files[video] = file
    references = read_captions(captions)
    builder = GroundTruthBuilder(categories=[{"id": 1, "name": "object"}])
    joined = set()
    for video_no, video in enumerate(progress(sorted(files), desc="SA-V videos",
                                              enabled=show_progress), start=1):
        joined |= _add_video(builder, video_no, video, files[video], references)
    unjoined = sorted(set(references) - joined)
    if unjoined:
        video, masklet = unjoined[0]
        raise InputError(f"{len(unjoined)} captions match no masklet, e.g. video {video} "
                         f"masklet {masklet}", source=str(captions), record=video,
                         field="masklet_id")
    return builder.to_dict(description="SAV-Caption DVOC ground truth",
                           references_per_object=max((len(r) for r in references.values()),
                                                     default=0))


def _add_video(builder: GroundTruthBuilder, video_no: int, video: str, file: Path,
               references: dict[tuple[str, int], list[str]]) -> set[tuple[str, int]]:
    source = str(file)
    data = load_json(file)
    height = get_field(data, "video_height", source=source, record_id=video, kind=int)
    width = get_field(data, "video_width", source=source, record_id=video, kind=int)
    masklet = get_list(data, "masklet", source=source, record_id=video)
    ids = get_list(data, "masklet_id", source=source, record_id=video)
    _, image_ids = builder.add_video(
        name=video, height=height, width=width,
        file_names=[f"{video}/{FRAME_STRIDE * k:05d}.jpg" for k in range(len(masklet))],
        video_id=video_no, extra={"frame_count": data.get("video_frame_count")})
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise InputError("masklet ids must be integers", source=source, record=video,
                         field="masklet_id")
    for k, (image_id, objects) in enumerate(zip(image_ids, masklet)):
        if not isinstance(objects, list) or len(objects) != len(ids):
            raise InputError(f"frame needs one RLE per masklet id ({len(ids)})", source=source,
                             record=video, field=f"masklet[{k}]")
        for obj, segmentation in zip(ids, objects):
            rle = to_rle(segmentation, height, width, source=source, record_id=video,
                         field=f"masklet[{k}]")
            bbox = rle_bbox(rle) if rle is not None else None
            if bbox is None or bbox[2] * bbox[3] == 0:
                continue  # absent on this frame
            refs = references.get((video, obj), [])
            builder.add_annotation(image_id=image_id,
                                   track_id=video_no * TRACKS_PER_VIDEO_ID + obj,
                                   category_id=1, bbox=bbox, segmentation=rle,
                                   caption=refs[0] if refs else "", extra={"captions": refs})
    return {(video, obj) for obj in ids}
