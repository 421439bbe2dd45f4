"""ViCaS per-video annotation files -> DVOC ground truth, grounded captions and LG-VIS prompts.

Source: ``annotations/<version>/{video_id:06d}.json`` with ``video_id, filename, image_size
[H, W], caption_parsed_en, caption_parsed_en_gpt, reworded_en_captions, object_referrals
[{prompt, track_ids}], segmentations [{filename, is_gt, track_ids, mask_rles}]``.

Grounded captions mark phrases as ``[phrase]<mask_1,2>``: the phrase refers to tracks 1 and 2.
A ``?`` among the ids marks a crowd (several unlabelled instances); it is reported as
``crowd=True`` and contributes no track id.

Output rules:

- Frames: by default only the human-annotated ones (``is_gt``, 1 fps), which is where LG-VIS
  is scored; ``human_only=False`` keeps the propagated 30 fps frames as well. Frames are
  ordered by file name.
- Videos 1.. in sorted ``video_id`` order; ``track_id = video_no * 1000 + track``.
- A track's caption is the first grounded phrase that refers to it ("" if none); the video keeps
  the grounded caption, its plain text, the caption variants the CA judge compares against
  (``caption_parsed_en``, ``caption_parsed_en_gpt``, rewordings) and the LG-VIS prompts with
  their track ids mapped to the output ``track_id``.

Example:
    >>> parse_grounded_caption("[A dog]<mask_1> chases [two cats]<mask_2,3>.")
    ('A dog chases two cats.', [('A dog', [1], False), ('two cats', [2, 3], False)])
"""

from __future__ import annotations

import os
import re
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

GROUNDED = re.compile(r"\[([^\[\]]*)\]<mask_([^>]*)>")
TRACKS_PER_VIDEO_ID = 1000


def parse_grounded_caption(text: str) -> tuple[str, list[tuple[str, list[int], bool]]]:
    """Split a grounded caption into plain text and ``(phrase, track ids, is_crowd)`` groundings.

    Raises ``ValueError`` on an id that is neither an integer nor ``?``.
    """
    groundings = []
    for match in GROUNDED.finditer(text):
        ids, crowd = [], False
        for token in match.group(2).split(","):
            token = token.strip()
            if "?" in token:
                crowd = True
                token = token.replace("?", "")
            if token:
                if not token.isdigit():
                    raise ValueError(f"bad track id {token!r} in {match.group(0)!r}")
                ids.append(int(token))
        groundings.append((match.group(1), ids, crowd))
    return GROUNDED.sub(lambda m: m.group(1), text), groundings


def convert_vicas(*, annotations: str | os.PathLike[str], human_only: bool = True,
                  show_progress: bool = True) -> dict[str, Any]:
    """Build the ViCaS ground truth from a folder of per-video files (or one file)."""
    root = Path(annotations)
    if not root.exists():
        raise InputError("ViCaS annotation folder not found", source=str(root))
    files = [root] if root.is_file() else sorted(root.glob("*.json"))
    if not files:
        raise InputError("no per-video *.json files", source=str(root))
    contents = []
    for file in files:
        data = load_json(file)
        video = get_field(data, "video_id", source=str(file), record_id=None, kind=(int, str))
        contents.append((str(video), file))
    contents.sort(key=lambda item: (len(item[0]), item[0]) if item[0].isdigit() else (0, item[0]))
    builder = GroundTruthBuilder(categories=[{"id": 1, "name": "object"}])
    for video_no, (video, file) in enumerate(progress(contents, desc="ViCaS videos",
                                                      enabled=show_progress), start=1):
        _add_video(builder, video_no, video, file, human_only)
    return builder.to_dict(description="ViCaS ground truth",
                           frames="human-annotated (1 fps)" if human_only else "all")


def _add_video(builder: GroundTruthBuilder, video_no: int, video: str, file: Path,
               human_only: bool) -> None:
    source = str(file)
    data = load_json(file)
    size = get_list(data, "image_size", source=source, record_id=video)
    if len(size) != 2 or not all(isinstance(v, int) for v in size):
        raise InputError(f"expected [H, W], got {size!r}", source=source, record=video,
                         field="image_size")
    height, width = size
    grounded = get_field(data, "caption_parsed_en", source=source, record_id=video, kind=str)
    try:
        plain, groundings = parse_grounded_caption(grounded)
    except ValueError as exc:
        raise InputError(str(exc), source=source, record=video, field="caption_parsed_en") from None
    def track(local_id: int) -> int:
        return video_no * TRACKS_PER_VIDEO_ID + local_id

    phrase_of: dict[int, str] = {}
    for phrase, ids, _ in groundings:
        for t in ids:
            phrase_of.setdefault(t, phrase)
    prompts = []
    for i, referral in enumerate(get_list(data, "object_referrals", source=source,
                                          record_id=video)):
        where = f"{video}/object_referrals[{i}]"
        prompts.append({
            "prompt": get_field(referral, "prompt", source=source, record_id=where, kind=str),
            "track_ids": [track(t) for t in get_list(referral, "track_ids", source=source,
                                                     record_id=where)]})
    segmentations = get_list(data, "segmentations", source=source, record_id=video)
    frames = sorted((s for s in segmentations
                     if not human_only or get_field(s, "is_gt", source=source, record_id=video,
                                                    kind=bool)),
                    key=lambda s: get_field(s, "filename", source=source, record_id=video,
                                            kind=str))
    gpt = data.get("caption_parsed_en_gpt")
    _, image_ids = builder.add_video(
        name=video, height=height, width=width,
        file_names=[f"{Path(str(data.get('filename', video))).stem}/{s['filename']}"
                    for s in frames],
        video_id=video_no,
        extra={"source_video_id": data["video_id"], "caption_grounded": grounded,
               "caption": plain,
               "reference_captions": [grounded] + ([gpt] if isinstance(gpt, str) else [])
               + list(data.get("reworded_en_captions") or []),
               "lgvis_prompts": prompts})
    for image_id, frame in zip(image_ids, frames):
        where = f"{video}/{frame['filename']}"
        ids = get_list(frame, "track_ids", source=source, record_id=where)
        rles = get_list(frame, "mask_rles", source=source, record_id=where)
        if len(ids) != len(rles):
            raise InputError(f"{len(ids)} track ids for {len(rles)} masks", source=source,
                             record=where, field="mask_rles")
        for t, segmentation in zip(ids, rles):
            rle = to_rle(segmentation, height, width, source=source, record_id=where,
                         field="mask_rles")
            if rle is None:
                continue
            bbox = rle_bbox(rle)
            if bbox[2] * bbox[3] == 0:
                continue  # empty mask: object not visible on this frame
            builder.add_annotation(image_id=image_id, track_id=track(t), category_id=1,
                                   bbox=bbox, segmentation=rle, caption=phrase_of.get(t, ""))
