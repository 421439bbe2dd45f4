"""Visual prompts: the sampled frames of one object, with the object marked.

``"boxes"`` draws the object's box in red on each frame (MaskCaptioner); ``"contour"`` draws a
red contour around its mask and blurs everything outside it (VoCap). Frames are downscaled so
that the long side is at most ``max_side`` pixels (cost: Gemini bills images by 768-pixel
tiles) and sent as PNG (lossless, so the request is reproducible byte for byte).

OpenCV is imported inside the functions that need it: ``benchmark`` itself must import
without it.

Example:
    >>> sample_indices(10, 4)
    [0, 3, 6, 9]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pycocotools import mask as mask_utils

from benchmark.captioning.sources import Target
from benchmark.errors import InputError, ToolMissingError
from benchmark.structures.masks import to_rle as to_bytes_rle

RED_BGR = (0, 0, 255)


@dataclass(frozen=True)
class View:
    """One frame as sent to the model: PNG bytes and the object's box in its pixel frame."""

    frame_index: int
    png: bytes
    box_xyxy: tuple[float, float, float, float]
    size: tuple[int, int]  # width, height of the image sent


def _cv2():
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ToolMissingError(
            "drawing visual prompts needs OpenCV: pip install opencv-python-headless"
        ) from exc
    return cv2


def sample_indices(n: int, k: int) -> list[int]:
    """``k`` positions spread uniformly over ``range(n)``, first and last included (all of them
    when ``n <= k``)."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [(n - 1) // 2]
    return [int(round(i * (n - 1) / (k - 1))) for i in range(k)]


def area_fraction(target: Target) -> float:
    """Mean object area over the frames where it is present, as a fraction of the frame."""
    areas = [a for a in target.areas if a is not None]
    return float(np.mean(areas)) / (target.width * target.height) if areas else 0.0


def _read(path: Path, target: Target) -> np.ndarray:
    image = _cv2().imread(str(path), _cv2().IMREAD_COLOR)
    if image is None:
        raise InputError(
            "frame image missing or unreadable", source=str(path),
            record=target.annotation_id, field="file_names",
        )
    return image


def _mask(target: Target, f: int, height: int, width: int) -> np.ndarray:
    rle = target.rles[f]
    if rle is None:  # box-only annotation: the box is the best mask there is
        mask = np.zeros((target.height, target.width), np.uint8)
        x, y, w, h = target.boxes[f]
        mask[int(y):int(np.ceil(y + h)), int(x):int(np.ceil(x + w))] = 1
    else:
        mask = mask_utils.decode(to_bytes_rle(rle))
    if mask.shape != (height, width):
        mask = _cv2().resize(mask, (width, height), interpolation=_cv2().INTER_NEAREST)
    return mask.astype(np.uint8)


def render_views(
    target: Target, *, style: str = "boxes", num_frames: int = 4, max_side: int = 768
) -> list[View]:
    """Read, mark and encode the ``num_frames`` uniformly sampled frames where the object is
    present."""
    cv2 = _cv2()
    present = target.present_frames
    views = []
    for pos in sample_indices(len(present), num_frames):
        f = present[pos]
        image = _read(target.frame_paths[f], target)
        # Annotations live in the dataset's declared size; frames on disk may differ.
        scale = min(1.0, max_side / max(image.shape[:2]))
        sx = image.shape[1] / target.width * scale
        sy = image.shape[0] / target.height * scale
        if scale < 1.0:
            image = cv2.resize(
                image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                interpolation=cv2.INTER_AREA,
            )
        h, w = image.shape[:2]
        x, y, bw, bh = target.boxes[f]
        box = (x * sx, y * sy, (x + bw) * sx, (y + bh) * sy)
        thickness = max(2, round(max(h, w) / 250))
        if style == "boxes":
            cv2.rectangle(
                image, (int(round(box[0])), int(round(box[1]))),
                (int(round(box[2])), int(round(box[3]))), RED_BGR, thickness,
            )
        elif style in ("contour", "vocap"):
            mask = _mask(target, f, h, w)
            blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=max(2.0, max(h, w) / 100))
            image = np.where(mask[..., None] > 0, image, blurred)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(image, contours, -1, RED_BGR, thickness)
        else:
            raise InputError(f"unknown visual prompt {style!r}; expected 'boxes', 'contour' or 'vocap'")
        ok, png = cv2.imencode(".png", image)
        if not ok:  # pragma: no cover - OpenCV only fails here on empty images
            raise InputError("could not encode frame as PNG", source=str(target.frame_paths[f]))
        views.append(View(frame_index=f, png=png.tobytes(), box_xyxy=box, size=(w, h)))
    return views
