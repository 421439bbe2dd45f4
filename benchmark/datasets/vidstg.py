"""VidSTG sentences + VidOR trajectories -> DVOC ground truth, exactly as DVOC-DS built it.

Sources: the VidSTG sentence file (``val_annotations.json``, a list with one entry per
sentence) and the VidOR per-video trajectory files (``training/<folder>/<vid>.json``; both
VidSTG train and val come from VidOR *training*).

Construction rules [quirks of the published pipeline, reproduced on purpose]:

- Frames: 5 fps subsampling with the TubeDETR rule. With ``r = 5 / fps`` (fps from the VidOR
  file) frame 0 is kept, then every frame ``f`` with ``int(f * r) > int(last_kept * r)``,
  i.e. the first frame of each new 1/5-second bucket of the *whole* video (not only the
  sentence segment). If more than 200 frames remain, keep ``kept[(j * N) // 200]`` for
  ``j < 200``.
- Boxes: every VidOR box of each kept frame, ``[xmin, ymin, xmax - xmin, ymax - ymin]`` (no
  +1), whether or not the object is mentioned by a sentence.
- Captions: sentences of a video are visited in file order; a box gets a sentence's caption
  when its frame lies in ``[temporal_gt.begin_fid, temporal_gt.end_fid)`` and its tid is the
  caption's ``target_id``. When windows of the same target overlap, the later sentence in the
  file wins. Every other box has caption ``""``.
- Ids: videos numbered 1.. in sorted ``vid`` order (string sort), ``track_id = video_no * 100
  + tid``, ``image_id = video_no * 6000 + frame_id`` where ``frame_id`` is the original VidOR
  frame number; ``frame_index`` is the position among the kept frames (0..199).

How validation gives 602 videos / 1,644 captions: the 3,996 val sentences cover 602 distinct
``vid``; each has one caption whose target is the relation's subject. They name 1,644
distinct (video, target tid) pairs, every one of which has at least one kept frame inside one
of its windows, so 1,644 tracks carry a caption ("captions" in MaskCaptioner = captioned
trajectories). With overlapping windows overwritten by later sentences, those tracks carry
2,468 distinct (track, caption) pairs on 101,160 captioned boxes.

Example:
    >>> tubedetr_frames(12, 10.0)
    [0, 2, 4, 6, 8, 10]
    >>> len(tubedetr_frames(3000, 30.0)), tubedetr_frames(3000, 30.0)[:3]
    (200, [0, 12, 30])
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmark.datasets.common import (
    GroundTruthBuilder,
    get_field,
    get_list,
    load_json,
    number,
    progress,
)
from benchmark.errors import InputError

OUTPUT_FPS = 5.0
MAX_FRAMES = 200
# Id strides of the published pipeline: frames and tracks of one video must stay below them.
FRAMES_PER_VIDEO_ID = 6000
TRACKS_PER_VIDEO_ID = 100


def tubedetr_frames(frame_count: int, fps: float, *, output_fps: float = OUTPUT_FPS,
                    max_frames: int | None = MAX_FRAMES) -> list[int]:
    """Original frame numbers kept by the TubeDETR 5 fps rule, then capped with
    ``(j * N) // max_frames``."""
    rate = output_fps / fps
    kept = [0]
    for frame in range(1, frame_count):
        if int(kept[-1] * rate) < int(frame * rate):
            kept.append(frame)
    if max_frames is not None and len(kept) > max_frames:
        kept = [kept[(j * len(kept)) // max_frames] for j in range(max_frames)]
    return kept


def index_vidor(paths: list[str | os.PathLike[str]]) -> dict[str, Path]:
    """Map each VidOR video id to its trajectory file, searching the given folders (or files)
    recursively, e.g. ``training/`` with its ``0000/``, ``0001/``... sub-folders."""
    found: dict[str, Path] = {}
    for root in map(Path, paths):
        if root.is_file():
            found[root.stem] = root
        elif root.is_dir():
            for file in root.rglob("*.json"):
                found.setdefault(file.stem, file)
        else:
            raise InputError("VidOR annotation folder not found", source=str(root))
    return found


def convert_vidstg(*, sentences: str | os.PathLike[str],
                   vidor: list[str | os.PathLike[str]],
                   show_progress: bool = True) -> dict[str, Any]:
    """Build the DVOC ground truth from a VidSTG sentence file and VidOR trajectory folders.

    Example:
        >>> gt = convert_vidstg(sentences="val_annotations.json",
        ...                     vidor=["vidor/training"])  # doctest: +SKIP
        >>> len(gt["videos"])  # doctest: +SKIP
        602
    """
    source = str(sentences)
    entries = load_json(sentences)
    if not isinstance(entries, list):
        raise InputError("expected a list of sentence entries", source=source)
    by_video: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, entry in enumerate(entries):
        vid = get_field(entry, "vid", source=source, record_id=index, kind=str)
        by_video[vid].append((index, entry))
    vidor_files = index_vidor(vidor)
    categories: dict[str, None] = {}
    videos = []
    for video_no, vid in progress(list(enumerate(sorted(by_video), start=1)),
                                  desc="VidOR files", enabled=show_progress):
        if vid not in vidor_files:
            raise InputError(f"no VidOR trajectory file {vid}.json under {[str(p) for p in vidor]}",
                             source=source, record=by_video[vid][0][0], field="vid")
        vidor_video = _read_vidor(vidor_files[vid])
        videos.append((video_no, vid, vidor_video))
        categories.update(dict.fromkeys(vidor_video["categories"].values()))
    # Category ids 1.. over sorted names: the scorer is class-agnostic, ids only label boxes.
    category_ids = {name: i for i, name in enumerate(sorted(categories), start=1)}
    builder = GroundTruthBuilder(
        categories=[{"id": i, "name": name} for name, i in category_ids.items()])
    for video_no, vid, vidor_video in videos:
        _add_video(builder, video_no, vid, vidor_video, by_video[vid], source, category_ids)
    return builder.to_dict(
        description="VidSTG DVOC ground truth (DVOC-DS construction)",
        source=Path(source).name,
        frame_rule=f"TubeDETR {OUTPUT_FPS:g} fps, at most {MAX_FRAMES} frames",
    )


def _read_vidor(path: Path) -> dict[str, Any]:
    source = str(path)
    data = load_json(path)
    frame_count = get_field(data, "frame_count", source=source, record_id=None, kind=int)
    fps = number(get_field(data, "fps", source=source, record_id=None), source=source,
                 record_id=None, field="fps")
    if not 0 < fps:
        raise InputError(f"fps must be positive, got {fps}", source=source, field="fps")
    if fps < OUTPUT_FPS:
        raise InputError(f"fps {fps} is below the {OUTPUT_FPS:g} fps sampling rate",
                         source=source, field="fps")
    trajectories = get_list(data, "trajectories", source=source, record_id=None)
    if len(trajectories) != frame_count:
        raise InputError(f"{len(trajectories)} trajectory frames for frame_count {frame_count}",
                         source=source, field="trajectories")
    if frame_count > FRAMES_PER_VIDEO_ID:
        raise InputError(f"{frame_count} frames: image ids video_no*{FRAMES_PER_VIDEO_ID}+frame "
                         "would collide", source=source, field="frame_count")
    categories = {}
    for i, obj in enumerate(get_list(data, "subject/objects", source=source, record_id=None)):
        tid = get_field(obj, "tid", source=source, record_id=f"subject/objects[{i}]", kind=int)
        categories[tid] = get_field(obj, "category", source=source,
                                    record_id=f"subject/objects[{i}]", kind=str)
    frames = tubedetr_frames(frame_count, fps)
    return {
        "source": source,
        "frame_count": frame_count,
        "fps": fps,
        "width": get_field(data, "width", source=source, record_id=None, kind=int),
        "height": get_field(data, "height", source=source, record_id=None, kind=int),
        # Only the kept frames are held in memory: a full split has millions of VidOR boxes.
        "frames": {frame: trajectories[frame] for frame in frames},
        "categories": categories,
    }


def _add_video(builder: GroundTruthBuilder, video_no: int, vid: str, vidor: dict[str, Any],
               sentences: list[tuple[int, dict[str, Any]]], source: str,
               category_ids: dict[str, int]) -> None:
    windows = []
    for index, entry in sentences:
        window = get_field(entry, "temporal_gt", source=source, record_id=index, kind=dict)
        begin = get_field(window, "begin_fid", source=source, record_id=index, kind=int)
        end = get_field(window, "end_fid", source=source, record_id=index, kind=int)
        for caption in get_list(entry, "captions", source=source, record_id=index):
            target = get_field(caption, "target_id", source=source, record_id=index, kind=int)
            text = get_field(caption, "description", source=source, record_id=index, kind=str)
            windows.append((index, begin, end, target, text))
    frames = list(vidor["frames"])
    _, image_ids = builder.add_video(
        name=vid, height=vidor["height"], width=vidor["width"],
        file_names=[f"{vid}/{frame:05d}.jpg" for frame in frames],
        video_id=video_no,
        image_ids=[video_no * FRAMES_PER_VIDEO_ID + frame for frame in frames],
        extra={"fps": vidor["fps"], "frame_count": vidor["frame_count"]},
    )
    vsource = vidor["source"]
    for frame, image_id in zip(frames, image_ids):
        boxes: dict[int, list[float]] = {}
        frame_boxes = vidor["frames"][frame]
        if not isinstance(frame_boxes, list):
            raise InputError("expected a list of boxes", source=vsource,
                             record=f"trajectories[{frame}]")
        for k, box in enumerate(frame_boxes):
            where = f"trajectories[{frame}][{k}]"
            tid = get_field(box, "tid", source=vsource, record_id=where, kind=int)
            if not 0 <= tid < TRACKS_PER_VIDEO_ID:
                raise InputError(f"tid {tid} outside 0..{TRACKS_PER_VIDEO_ID - 1}: track ids "
                                 f"video_no*{TRACKS_PER_VIDEO_ID}+tid would collide",
                                 source=vsource, record=where, field="tid")
            corners = get_field(box, "bbox", source=vsource, record_id=where, kind=dict)
            x0, y0, x1, y1 = (number(corners.get(key), source=vsource, record_id=where,
                                     field=f"bbox.{key}")
                              for key in ("xmin", "ymin", "xmax", "ymax"))
            # A later duplicate of a tid replaces the earlier one, as in the reference dict.
            boxes[tid] = [x0, y0, x1 - x0, y1 - y0]
        captions = {tid: "" for tid in boxes}
        for index, begin, end, target, text in windows:
            if begin <= frame < end:
                if target not in boxes:
                    raise InputError(
                        f"caption target tid {target} has no VidOR box on frame {frame} inside "
                        f"its window [{begin}, {end})", source=source, record=index,
                        field="captions.target_id")
                captions[target] = text
        for tid, bbox in boxes.items():
            category = vidor["categories"].get(tid)
            if category is None:
                raise InputError(f"tid {tid} is not listed in subject/objects", source=vsource,
                                 record=f"trajectories[{frame}]", field="tid")
            builder.add_annotation(image_id=image_id, track_id=video_no * TRACKS_PER_VIDEO_ID + tid,
                                   category_id=category_ids[category], bbox=bbox,
                                   caption=captions[tid])
