"""Draw one video with its ground truth and predictions: boxes (or mask contours), track ids
in stable colours, and each predicted track's caption next to the ground-truth caption of the
object the scorer matched it with.

Frames come from the frames folder the converters and ``benchmark sample generate`` write
(``<gt folder>/JPEGImages/<file_name>``, or ``frames_root``), or from an .mp4 read frame by
frame with OpenCV; without either, on a grey canvas of the video's size (said as a warning).
Ground truth is drawn in white, thin; each predicted track in its own colour (the same colour
for the same track id in every frame and every render), labelled with its id. Under the frame,
one line per predicted track visible in it: its caption, and "GT #id: caption" of the
ground-truth track it matches most often at ``alpha`` (the scorer's own assignment,
:func:`benchmark.matching.assign_sequence`).

Example:
    >>> render("gt.json", "pred.json", video="video_00001", out="video.mp4",
    ...        contact_sheet="sheet.png")                                   # doctest: +SKIP
"""

from __future__ import annotations

import colorsys
import hashlib
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import InputError
from benchmark.io import load_ground_truth, load_predictions, read_json
from benchmark.matching import EPS, assign_sequence
from benchmark.scoring import VideoInput, _contiguous, detection_geometry

GT_COLOUR = (255, 255, 255)  # BGR
PANEL_LINE = 18  # pixels per caption line under the frame
MIN_WIDTH = 640  # frames narrower than this are enlarged by a whole factor before drawing
SHEET_TILE_WIDTH = 320  # pixels per frame on a contact sheet


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A bright BGR colour for a track id, the same in every render.

    Example:
        >>> track_colour(7) == track_colour(7), track_colour(7) != track_colour(8)
        (True, True)
    """
    h = int.from_bytes(hashlib.sha256(str(int(track_id)).encode()).digest()[:4], "little") / 2**32
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


@dataclass
class Rendered:
    """What :func:`render` wrote: the frame files (or the .mp4) and the contact sheet."""

    frames: list[Path]
    video: Path | None
    contact_sheet: Path | None


def _video_index(gt, video: Any) -> int:
    names = [str(n) for n in gt.video_names]
    ids = [str(int(i)) for i in gt.video_ids]
    key = str(video)
    if key in names:
        return names.index(key)
    if key in ids:
        return ids.index(key)
    raise InputError(f"no video {key!r} in the ground truth (first videos: {', '.join(names[:5])})",
                     source=gt.source, field="video")


def _matched_gt_track(gt_tracks: np.ndarray, gt_frames: np.ndarray, gt_geometry, pred_tracks: np.ndarray,
                      pred_frames: np.ndarray, pred_geometry, num_frames: int, iou: str, alpha: float
                      ) -> dict[int, int]:
    """Predicted track id -> the ground-truth track id it is a true positive of most often."""
    if not len(gt_tracks) or not len(pred_tracks):
        return {}
    matching = assign_sequence(VideoInput(
        num_frames=num_frames, gt_frame=gt_frames, gt_track=_contiguous(gt_tracks),
        gt_caption=np.zeros(len(gt_frames), np.int64), gt_geometry=gt_geometry, pred_frame=pred_frames,
        pred_track=_contiguous(pred_tracks), pred_caption=np.zeros(len(pred_frames), np.int64),
        pred_geometry=pred_geometry).sequence(iou))
    tp = matching.similarity >= alpha - EPS
    votes = Counter(zip(pred_tracks[matching.pred[tp]].tolist(), gt_tracks[matching.gt[tp]].tolist()))
    best: dict[int, int] = {}
    for (p, g), _ in votes.most_common():
        best.setdefault(p, g)
    return best


def render(gt: Any, pred: Any, *, video: Any, out: str | os.PathLike[str], frames_root: str | None = None,
           video_file: str | None = None, iou: str = "box", score_threshold: float = 0.5, alpha: float = 0.5,
           contact_sheet: str | os.PathLike[str] | None = None, fps: float = 5.0) -> Rendered:
    """Draw ``video`` of ``gt`` with ``pred`` into ``out`` (a folder of PNGs, or an .mp4)."""
    import cv2

    from benchmark.atomic import atomic_write_bytes
    from benchmark.structures.masks import to_rle

    ground_truth = load_ground_truth(gt, require_captions=False)
    v = _video_index(ground_truth, video)
    det = load_predictions(pred, ground_truth, require_captions=False)
    det = det.take((det.scores > score_threshold) & (det.video == v))
    gt_det = ground_truth.detections
    g = gt_det.take(gt_det.video == v)
    gt_geometry = detection_geometry(g, ground_truth, iou=iou)
    pred_geometry = detection_geometry(det, ground_truth, iou=iou)
    num_frames = int(ground_truth.num_frames[v])
    partner = _matched_gt_track(g.track, g.frame, gt_geometry, det.track, det.frame, pred_geometry,
                                num_frames, iou, alpha)
    gt_caption = {int(t): c for t, c in zip(g.track.tolist(), g.captions.tolist()) if c}
    height, width = int(ground_truth.heights[v]) or 480, int(ground_truth.widths[v]) or 640

    # Where each frame's pixels come from.
    file_of_frame: dict[int, str] = {}
    if ground_truth.layout == "coco-video" and isinstance(gt, (str, os.PathLike)):
        data = read_json(gt, what="ground truth")[0]
        root = Path(frames_root) if frames_root else Path(gt).parent / data.get("info", {}).get("image_root", "JPEGImages")
        ids = set(ground_truth.images.ids[ground_truth.images.video == v].tolist())
        frame_of_id = dict(zip(ground_truth.images.ids.tolist(), ground_truth.images.frame.tolist()))
        for image in data["images"]:
            if image["id"] in ids and "file_name" in image:
                file_of_frame[frame_of_id[image["id"]]] = str(root / image["file_name"])
    capture = cv2.VideoCapture(str(video_file)) if video_file else None
    if video_file and not capture.isOpened():
        raise InputError("OpenCV cannot read this video file", source=str(video_file))
    order = (ground_truth.frame_at_position[v].tolist() if ground_truth.frame_at_position is not None
             else list(range(num_frames)))
    missing = 0
    images = []
    for position, frame in enumerate(order):
        image = None
        if capture is not None:
            capture.set(cv2.CAP_PROP_POS_FRAMES, position)
            ok, image = capture.read()
            image = image if ok else None
        elif frame in file_of_frame and Path(file_of_frame[frame]).is_file():
            image = cv2.imread(file_of_frame[frame], cv2.IMREAD_COLOR)
        if image is None:
            missing += 1
            image = np.full((height, width, 3), 96, np.uint8)
        images.append(_draw(image, frame, g, gt_geometry, det, pred_geometry, partner, gt_caption, iou, to_rle))
    # One height for every frame (their caption panels differ): a video needs it.
    tallest = max(im.shape[0] for im in images)
    images = [np.vstack([im, np.zeros((tallest - im.shape[0], im.shape[1], 3), np.uint8)]) for im in images]
    if missing:
        warnings.warn(f"{missing} of {len(order)} frames of video {ground_truth.video_names[v]} were not found "
                      f"(frames folder {frames_root or 'next to the ground truth'}): drawn on grey", stacklevel=2)
    out = Path(out)
    written: list[Path] = []
    mp4 = None
    if out.suffix.lower() == ".mp4":
        if out.is_symlink():
            raise InputError("refusing to replace a symbolic link", source=str(out))
        tmp = out.with_name(f".{out.name}.tmp.mp4")
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                 (images[0].shape[1], images[0].shape[0]))
        for image in images:
            writer.write(image)
        writer.release()
        os.replace(tmp, out)
        mp4 = out
    else:
        out.mkdir(parents=True, exist_ok=True)
        for position, image in enumerate(images):
            path = out / f"frame_{position:05d}.png"
            atomic_write_bytes(path, cv2.imencode(".png", image)[1].tobytes())
            written.append(path)
    sheet = None
    if contact_sheet is not None:
        picks = np.unique(np.linspace(0, len(images) - 1, min(8, len(images))).round().astype(int))
        tiles = [images[i] for i in picks]
        scale = min(1.0, SHEET_TILE_WIDTH / tiles[0].shape[1])
        tiles = [cv2.resize(t, (round(t.shape[1] * scale), round(t.shape[0] * scale)), interpolation=cv2.INTER_AREA)
                 for t in tiles]
        columns = min(4, len(tiles))
        blank = np.zeros_like(tiles[0])
        rows = [np.hstack(tiles[i:i + columns] + [blank] * (columns - len(tiles[i:i + columns])))
                for i in range(0, len(tiles), columns)]
        sheet = Path(contact_sheet)
        atomic_write_bytes(sheet, cv2.imencode(".png", np.vstack(rows))[1].tobytes())
    return Rendered(frames=written, video=mp4, contact_sheet=sheet)


def _draw(image: np.ndarray, frame: int, g, gt_geometry, det, pred_geometry, partner: dict[int, int],
          gt_caption: dict[int, str], iou: str, to_rle) -> np.ndarray:
    """One frame with its boxes (or contours) and the caption panel under it."""
    import cv2
    from pycocotools import mask as mask_utils

    h, w = image.shape[:2]
    # Small frames are enlarged first, so that ids and captions stay legible.
    scale = max(1, MIN_WIDTH // w)
    if scale > 1:
        image = cv2.resize(image, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)

    def outline(geometry, colour, thickness):
        if iou == "mask":
            mask = mask_utils.decode(to_rle(geometry, h, w)).astype(np.uint8)
            if scale > 1:
                mask = cv2.resize(mask, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(image, contours, -1, colour, thickness)
            ys, xs = np.nonzero(mask)
            return (int(xs.min()), int(ys.min())) if len(xs) else (0, 0)
        x, y, bw, bh = (float(c) * scale for c in geometry)
        cv2.rectangle(image, (round(x), round(y)), (round(x + bw), round(y + bh)), colour, thickness)
        return round(x), round(y)

    for k in np.flatnonzero(g.frame == frame).tolist():
        outline(gt_geometry[k], GT_COLOUR, 1)
    lines = []
    for k in np.flatnonzero(det.frame == frame).tolist():
        track = int(det.track[k])
        colour = track_colour(track)
        x, y = outline(pred_geometry[k], colour, 2)
        cv2.putText(image, f"#{track}", (x + 2, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1,
                    cv2.LINE_AA)
        matched = partner.get(track)
        truth = f"GT #{matched}: {gt_caption.get(matched, '')}" if matched is not None else "no match"
        lines.append((colour, f"#{track}: {det.captions[k]}  |  {truth}"))
    panel = np.zeros((PANEL_LINE * max(1, len(lines)) + 6, image.shape[1], 3), np.uint8)
    for i, (colour, text) in enumerate(lines):
        cv2.putText(panel, text, (4, PANEL_LINE * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return np.vstack([image, panel])
