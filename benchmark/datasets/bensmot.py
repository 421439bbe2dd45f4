"""BenSMOT (MOTChallenge ``gt.txt`` + ``instance_caption.json``) -> DVOC ground truth.

Sources: per sequence ``{root}/{split}/{activity}/{seq}/gt/gt.txt`` (CSV ``frame, id, x, y, w,
h, conf, class, vis``; frames 1-based), its frames ``imgs/001.jpg...`` (or a ``seqinfo.ini``),
and the combined ``instance_caption.json = {"activity/seq": {"<track id>": caption}}``.

Rules:

- Rows with ``conf == 0`` or ``class != 1`` are ignored, as TrackEval does for MOTChallenge
  ground truth (zero-marked rows and non-pedestrian classes are not objects to find).
- Sequences: those with a ``gt/gt.txt``, sorted by ``activity/seq``, numbered 1..; a sequence
  missing from ``instance_caption.json`` is skipped, as in the published conversion, and listed
  in ``info.skipped``. Frames: one image per file in ``imgs/`` (else ``seqLength`` of
  ``seqinfo.ini``); ``frame_index = frame - 1``.
- Track ids: 1.. over (sequence, MOT id) in order, so that they are unique across videos; the
  MOT id is kept as ``source_track_id``. Caption: ``instance_caption[seq][str(id)]``, else "".

Example:
    >>> gt = convert_bensmot(root="BenSMOT", split="test",
    ...                      captions="instance_caption.json")  # doctest: +SKIP
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any

from benchmark.datasets.common import GroundTruthBuilder, load_json, progress
from benchmark.errors import InputError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
PEDESTRIAN = 1


def read_mot_gt(path: str | os.PathLike[str]) -> list[tuple[int, int, list[float]]]:
    """Rows ``(frame, id, [x, y, w, h])`` of a MOTChallenge ``gt.txt`` that TrackEval keeps
    (conf != 0 and class == 1).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "gt.txt"
        >>> _ = p.write_text("1,3,10,20,30,40,1,1,1.0\\n1,4,0,0,5,5,0,1,1\\n2,3,1,2,3,4,1,7,1\\n")
        >>> read_mot_gt(p)
        [(1, 3, [10.0, 20.0, 30.0, 40.0])]
    """
    source = str(path)
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError("file not found", source=source) from None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.replace(" ", "").split(",")]
        if len(cells) < 8:
            raise InputError(f"{len(cells)} columns, need frame,id,x,y,w,h,conf,class[,vis]",
                             source=source, record=f"line {line_no}")
        try:
            values = [float(c) for c in cells[:8]]
        except ValueError:
            raise InputError(f"non-numeric value in {line!r}", source=source,
                             record=f"line {line_no}") from None
        frame, track, x, y, w, h, conf, klass = values
        if conf == 0 or int(klass) != PEDESTRIAN:
            continue
        if frame < 1 or frame != int(frame):
            raise InputError(f"frame {cells[0]} is not a 1-based frame number", source=source,
                             record=f"line {line_no}", field="frame")
        if w < 0 or h < 0:
            raise InputError("negative box size", source=source, record=f"line {line_no}",
                             field="w/h")
        rows.append((int(frame), int(track), [x, y, w, h]))
    return rows


def convert_bensmot(*, root: str | os.PathLike[str], split: str,
                    captions: str | os.PathLike[str],
                    show_progress: bool = True) -> dict[str, Any]:
    """Build the BenSMOT DVOC ground truth of one split (``train`` or ``test``)."""
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise InputError(f"split folder {split!r} not found", source=str(split_dir))
    caption_src = str(captions)
    all_captions = load_json(captions)
    if not isinstance(all_captions, dict):
        raise InputError("expected {\"activity/seq\": {\"track id\": caption}}", source=caption_src)
    sequences = sorted(p.parent.parent for p in split_dir.glob("*/*/gt/gt.txt"))
    if not sequences:
        raise InputError("no */*/gt/gt.txt sequences found", source=str(split_dir))
    builder = GroundTruthBuilder(categories=[{"id": 1, "name": "person"}])
    skipped = []
    next_track = 1
    for seq_dir in progress(sequences, desc=f"BenSMOT {split}", enabled=show_progress):
        name = f"{seq_dir.parent.name}/{seq_dir.name}"
        if name not in all_captions:
            skipped.append(name)
            continue
        seq_captions = all_captions[name]
        if not isinstance(seq_captions, dict):
            raise InputError("expected {\"track id\": caption}", source=caption_src, record=name)
        length, height, width, file_names = _sequence_frames(seq_dir, name)
        rows = read_mot_gt(seq_dir / "gt" / "gt.txt")
        _, image_ids = builder.add_video(name=name, height=height, width=width,
                                         file_names=file_names)
        tracks: dict[int, int] = {}
        seen = set()
        for frame, mot_id, bbox in rows:
            if frame > length:
                raise InputError(f"frame {frame} beyond the {length} frames of the sequence",
                                 source=str(seq_dir / "gt" / "gt.txt"), record=f"id {mot_id}",
                                 field="frame")
            if (frame, mot_id) in seen:
                raise InputError(f"id {mot_id} appears twice on frame {frame}",
                                 source=str(seq_dir / "gt" / "gt.txt"), field="id")
            seen.add((frame, mot_id))
            if mot_id not in tracks:
                tracks[mot_id] = next_track
                next_track += 1
            caption = seq_captions.get(str(mot_id), "")
            if not isinstance(caption, str):
                raise InputError("caption must be a string", source=caption_src, record=name,
                                 field=str(mot_id))
            builder.add_annotation(image_id=image_ids[frame - 1], track_id=tracks[mot_id],
                                   category_id=1, bbox=bbox, caption=caption,
                                   extra={"source_track_id": mot_id})
    return builder.to_dict(description=f"BenSMOT {split} DVOC ground truth", skipped=skipped)


def _sequence_frames(seq_dir: Path, name: str) -> tuple[int, int, int, list[str]]:
    """Frame count, height, width and frame file names of a sequence."""
    info = configparser.ConfigParser()
    ini = seq_dir / "seqinfo.ini"
    if ini.is_file():
        info.read(ini)
    seq = info["Sequence"] if info.has_section("Sequence") else {}
    images = sorted(p for p in (seq_dir / "imgs").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if images:
        file_names = [f"{name}/imgs/{p.name}" for p in images]
    elif "seqLength" in seq:
        file_names = [f"{name}/imgs/{i:03d}.jpg" for i in range(1, int(seq["seqLength"]) + 1)]
    else:
        raise InputError("no frames in imgs/ and no seqLength in seqinfo.ini", source=str(seq_dir))
    if "imHeight" in seq and "imWidth" in seq:
        height, width = int(seq["imHeight"]), int(seq["imWidth"])
    elif images:
        from PIL import Image  # only needed when seqinfo.ini gives no size

        with Image.open(images[0]) as image:
            width, height = image.size
    else:
        raise InputError("no image size (imHeight/imWidth) in seqinfo.ini", source=str(ini))
    return len(file_names), height, width, file_names
