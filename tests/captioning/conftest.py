"""Fixtures: a tiny LV-VIS style dataset written to disk (frames from numpy) and a fake client."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.captioning.client import CaptionResponse

W, H, N = 64, 48, 6


def frame_pixels(video: int, f: int) -> np.ndarray:
    """Deterministic textured frame (BGR) so that blur and drawing are visible."""
    y, x = np.mgrid[0:H, 0:W]
    img = np.stack([(x * 4 + f * 7) % 256, (y * 5 + video * 40) % 256, ((x ^ y) * 9) % 256], axis=-1)
    return img.astype(np.uint8)


def rect_rle(x: int, y: int, w: int, h: int) -> dict:
    m = np.zeros((H, W), np.uint8, order="F")
    m[y:y + h, x:x + w] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [H, W], "counts": rle["counts"].decode()}


@pytest.fixture
def lvvis(tmp_path):
    """Two videos, five objects; cat (id 11) is a 16x10 mask moving 2 px right per frame."""
    root = tmp_path / "JPEGImages"
    videos = []
    for v in (1, 2):
        names = []
        for f in range(N):
            name = f"{v:05d}\\{f:05d}.png"  # Windows separators, as in LV-VIS
            path = root / f"{v:05d}" / f"{f:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), frame_pixels(v, f))
            names.append(name)
        videos.append({"id": v, "file_names": names, "height": H, "width": W, "length": N})
    cat = {"id": 11, "video_id": 1, "category_id": 1, "iscrowd": 0,
           "segmentations": [rect_rle(8 + 2 * f, 10, 16, 10) for f in range(N)]}
    dog = {"id": 12, "video_id": 1, "category_id": 2, "iscrowd": 0,
           "bboxes": [[30, 25, 20, 15]] * 3 + [None] * 3}
    person = {"id": 13, "video_id": 1, "category_id": 3, "iscrowd": 0,
              "segmentations": [[[40, 2, 60, 2, 60, 20, 40, 20]]] * N}
    cat2 = {"id": 21, "video_id": 2, "category_id": 1, "iscrowd": 0,
            "segmentations": [rect_rle(5, 5, 10, 10)] * N}
    box = {"id": 22, "video_id": 2, "category_id": 4, "iscrowd": 0,
           "segmentations": [None, rect_rle(20, 20, 12, 12)] + [None] * (N - 2)}
    data = {"videos": videos, "annotations": [cat, dog, person, cat2, box],
            "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"},
                           {"id": 3, "name": "person"}, {"id": 4, "name": "cardboard box"}]}
    src = tmp_path / "val_instances.json"
    src.write_text(json.dumps(data))
    return {"data": data, "source": src, "frames_root": root, "tmp": tmp_path}


class FakeClient:
    """Same interface as GeminiClient. ``script(request, n)`` returns a CaptionResponse or an
    exception to raise, where n is the 0-based call number."""

    def __init__(self, script=None):
        self.requests = []
        self._lock = threading.Lock()
        self.script = script or (lambda request, n: CaptionResponse(
            text=f"A small animal number {n} walks across the floor.", input_tokens=1000, output_tokens=50))

    def generate(self, request):
        with self._lock:
            n = len(self.requests)
            self.requests.append(request)
        outcome = self.script(request, n)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


@pytest.fixture
def fake_client():
    return FakeClient
