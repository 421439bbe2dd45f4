"""Procedural Dense Video Object Captioning data: moving coloured shapes with masks and captions.

Every video shows a few flat-coloured shapes (circle, square, triangle, star, diamond, hexagon)
on a dark textured background. Each shape is one track with one motion (moving left / right /
up / down, bouncing, growing, shrinking or standing still), may appear late or leave early,
and may be hidden in part by shapes drawn on top of it. The ground truth is the COCO-video
format that :func:`benchmark.chota` reads: per-frame boxes and compressed-RLE masks of the
*visible* pixels (the box is the bounding box of the visible mask) and one caption per track
naming its colour, shape and motion, with some lexical variety.

Everything is deterministic: video ``k`` depends only on ``(seed, k)`` and the frame size, so a
larger set starts with the same videos as a smaller one. Frames are rendered on demand.

Example:
    >>> from benchmark.synthetic import generate, make_submission
    >>> data = generate(num_videos=2, num_frames=8, seed=0)
    >>> frames = data.render(1)                       # (8, 64, 64, 3) uint8
    >>> frames.shape
    (8, 64, 64, 3)
    >>> sorted(data.gt)
    ['annotations', 'categories', 'images', 'info', 'videos']
    >>> preds = make_submission(data.gt, quality="good", seed=0)
    >>> sorted(preds[0])
    ['bbox', 'caption', 'category_id', 'image_id', 'score', 'segmentation', 'track_id', 'video_id']
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from benchmark.atomic import write_json_atomic
from benchmark.errors import InputError
from benchmark.io import read_json
from benchmark.sample_data import SAMPLE_QUALITIES, sample_paths

__all__ = [
    "COLOURS",
    "SHAPES",
    "MOTIONS",
    "CATEGORIES",
    "SAMPLE_CONFIG",
    "ShapeTrack",
    "SyntheticDataset",
    "generate",
    "make_submission",
    "write_sample",
    "sample_paths",
]

# Saturated colours: every one has a channel >= 180, while the background stays below 90, so a
# rendered object pixel can never be mistaken for background.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 70),
    "blue": (50, 100, 245),
    "yellow": (245, 225, 40),
    "purple": (165, 70, 215),
    "orange": (250, 145, 20),
    "white": (245, 245, 245),
    "pink": (250, 125, 195),
    "cyan": (40, 220, 230),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond", "hexagon")

MOTIONS: tuple[str, ...] = (
    "left", "right", "up", "down", "bouncing", "growing", "shrinking", "still",
)

#: One category per shape, ids 1.. in :data:`SHAPES` order.
CATEGORIES: list[dict[str, Any]] = [{"id": i + 1, "name": s} for i, s in enumerate(SHAPES)]

# Verb phrases per motion; the first of each list is the plain form.
_MOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("moving to the left", "moving left", "sliding to the left", "travelling left"),
    "right": ("moving to the right", "moving right", "sliding to the right", "travelling right"),
    "up": ("moving up", "moving upwards", "rising", "drifting up"),
    "down": ("moving down", "moving downwards", "falling", "sinking"),
    "bouncing": ("bouncing", "bouncing around", "bouncing off the walls"),
    "growing": ("growing", "getting bigger", "expanding"),
    "shrinking": ("shrinking", "getting smaller", "contracting"),
    "still": ("standing still", "not moving", "staying in place"),
}

# Polygon outlines on the unit scale (y points down); the circle is handled analytically.
_STAR = [
    ((1.0 if k % 2 == 0 else 0.45) * np.cos(np.pi * (-0.5 + k / 5)),
     (1.0 if k % 2 == 0 else 0.45) * np.sin(np.pi * (-0.5 + k / 5)))
    for k in range(10)
]
_POLYGONS: dict[str, np.ndarray] = {
    "square": np.array([(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)]),
    "diamond": np.array([(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)]),
    "triangle": np.array([(0.0, -1.0), (0.95, 0.75), (-0.95, 0.75)]),
    "hexagon": np.array([(np.cos(np.pi * k / 3), np.sin(np.pi * k / 3)) for k in range(6)]),
    "star": np.array(_STAR),
}

#: Settings of the bundled sample (``benchmark sample make`` regenerates it from these).
SAMPLE_CONFIG: dict[str, int] = {
    "num_videos": 12, "num_frames": 16, "height": 96, "width": 128, "max_objects": 4, "seed": 2024,
}


@dataclass(frozen=True)
class ShapeTrack:
    """One object of a synthetic video: what it looks like, how it moves and its caption.

    ``size`` is the half-extent in pixels at frame 0; ``growth`` is the size factor reached at
    the last frame (1 = constant); the object exists in frames ``first_frame..last_frame``.

    Example:
        >>> t = ShapeTrack(track_id=101, shape="circle", colour="red", motion="still",
        ...                caption="a red circle standing still", size=5.0, start=(10.0, 10.0),
        ...                velocity=(0.0, 0.0), growth=1.0, first_frame=0, last_frame=3)
        >>> t.geometry(2, num_frames=4, height=32, width=32)
        (10.0, 10.0, 5.0)
    """

    track_id: int
    shape: str
    colour: str
    motion: str
    caption: str
    size: float
    start: tuple[float, float]
    velocity: tuple[float, float]
    growth: float
    first_frame: int
    last_frame: int

    def geometry(
        self, t: int, *, num_frames: int, height: int, width: int
    ) -> tuple[float, float, float] | None:
        """Centre x, centre y and half-extent at frame ``t``; None where the object is absent."""
        if not self.first_frame <= t <= self.last_frame:
            return None
        progress = t / max(num_frames - 1, 1)
        size = self.size * (1.0 + (self.growth - 1.0) * progress)
        x = self.start[0] + self.velocity[0] * t
        y = self.start[1] + self.velocity[1] * t
        if self.motion == "bouncing":
            x = _reflect(x, size, width - size)
            y = _reflect(y, size, height - size)
        return (float(x), float(y), float(size))


def _reflect(p: float, lo: float, hi: float) -> float:
    # A point moving freely, folded back into [lo, hi]: the closed form of bouncing off walls.
    span = hi - lo
    if span <= 0:
        return (lo + hi) / 2
    q = (p - lo) % (2 * span)
    return lo + (q if q <= span else 2 * span - q)


def _shape_mask(shape: str, cx: float, cy: float, r: float, height: int, width: int) -> np.ndarray:
    """Boolean (height, width) mask of a shape, sampled at pixel centres."""
    mask = np.zeros((height, width), dtype=bool)
    x0, x1 = max(0, int(np.floor(cx - r))), min(width, int(np.ceil(cx + r)) + 1)
    y0, y1 = max(0, int(np.floor(cy - r))), min(height, int(np.ceil(cy + r)) + 1)
    if x0 >= x1 or y0 >= y1:
        return mask
    px = (np.arange(x0, x1) + 0.5 - cx)[None, :]
    py = (np.arange(y0, y1) + 0.5 - cy)[:, None]
    if shape == "circle":
        inside = px * px + py * py <= r * r
    else:
        # Crossing-number test against each polygon edge, vectorised over the window.
        verts = _POLYGONS[shape] * r
        inside = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        for (ax, ay), (bx, by) in zip(verts, np.roll(verts, -1, axis=0)):
            if ay == by:
                continue
            crosses = (ay > py) != (by > py)
            x_at = ax + (py - ay) * (bx - ax) / (by - ay)
            inside ^= crosses & (px < x_at)
    mask[y0:y1, x0:x1] = inside
    return mask


def _caption(rng: np.random.Generator, colour: str, shape: str, motion: str, size_word: str) -> str:
    article = "a" if rng.random() < 0.6 else "the"
    phrase = _MOTION_PHRASES[motion][rng.integers(len(_MOTION_PHRASES[motion]))]
    noun = " ".join(w for w in (article, size_word, colour, shape) if w)
    return f"{noun} {phrase}" if rng.random() < 0.7 else f"{noun} that is {phrase}"


@dataclass(frozen=True)
class _Video:
    video_id: int
    name: str
    tracks: tuple[ShapeTrack, ...]
    background_seed: int


def _sample_video(
    video_id: int, *, num_frames: int, height: int, width: int, max_objects: int, seed: int
) -> _Video:
    rng = np.random.default_rng([seed, video_id])
    side = min(height, width)
    count = int(rng.integers(1, max_objects + 1))
    colours = rng.choice(list(COLOURS), size=count, replace=False)
    steps = max(num_frames - 1, 1)
    tracks = []
    for k in range(count):
        shape = SHAPES[rng.integers(len(SHAPES))]
        motion = MOTIONS[rng.integers(len(MOTIONS))]
        size = float(rng.uniform(0.07, 0.2) * side)
        growth = 1.0
        if motion == "growing":
            size, growth = float(rng.uniform(0.06, 0.1) * side), float(rng.uniform(1.8, 2.4))
        elif motion == "shrinking":
            size, growth = float(rng.uniform(0.16, 0.22) * side), float(rng.uniform(0.35, 0.55))
        x = float(rng.uniform(size, width - size))
        y = float(rng.uniform(size, height - size))
        vx = vy = 0.0
        travel_x = float(rng.uniform(0.35, 0.6) * width) / steps
        travel_y = float(rng.uniform(0.35, 0.6) * height) / steps
        if motion == "left":
            x, vx = float(rng.uniform(0.6, 0.85) * width), -travel_x
        elif motion == "right":
            x, vx = float(rng.uniform(0.15, 0.4) * width), travel_x
        elif motion == "up":
            y, vy = float(rng.uniform(0.6, 0.85) * height), -travel_y
        elif motion == "down":
            y, vy = float(rng.uniform(0.15, 0.4) * height), travel_y
        elif motion == "bouncing":
            # Fast enough to hit a wall at least once over the clip.
            vx = float(rng.choice([-1, 1]) * rng.uniform(1.0, 2.0) * width / steps)
            vy = float(rng.choice([-1, 1]) * rng.uniform(1.0, 2.0) * height / steps)
        first, last = 0, num_frames - 1
        if num_frames >= 6 and rng.random() < 0.25:
            first = int(rng.integers(0, num_frames // 3 + 1))
            last = int(rng.integers((2 * num_frames) // 3, num_frames))
        size_word = ""
        if growth == 1.0:
            size_word = "small" if size <= 0.1 * side else "large" if size >= 0.17 * side else ""
        tracks.append(ShapeTrack(
            track_id=video_id * 100 + k + 1,
            shape=shape,
            colour=str(colours[k]),
            motion=motion,
            caption=_caption(rng, str(colours[k]), shape, motion, size_word),
            size=size,
            start=(x, y),
            velocity=(vx, vy),
            growth=growth,
            first_frame=first,
            last_frame=last,
        ))
    return _Video(video_id, f"video_{video_id:05d}", tuple(tracks), int(rng.integers(2**31)))


class SyntheticDataset:
    """A set of synthetic videos: the ground truth (``.gt``) and frames rendered on demand.

    Build it with :func:`generate`. ``gt`` is the COCO-video dict (``videos``, ``images``,
    ``annotations`` with ``bbox``, ``segmentation``, ``caption``, ``category_id``,
    ``track_id``; ``categories``). ``tracks(video_id)`` gives the objects' attributes
    (colour, shape, motion), handy as extra supervision.

    Example:
        >>> data = generate(num_videos=1, num_frames=4, seed=3)
        >>> [t.track_id for t in data.tracks(1)][:1]
        [101]
        >>> data.render(1).dtype
        dtype('uint8')
    """

    def __init__(
        self, videos: list[_Video], *, num_frames: int, height: int, width: int, seed: int,
        progress: bool = False,
    ) -> None:
        self.num_frames = num_frames
        self.height = height
        self.width = width
        self.seed = seed
        self._videos = {v.video_id: v for v in videos}
        self.gt = self._build_gt(progress=progress)

    @classmethod
    def from_tracks(
        cls, videos: Sequence[Sequence[ShapeTrack]], *, num_frames: int, height: int,
        width: int, seed: int = 0,
    ) -> "SyntheticDataset":
        """A dataset of hand-made scenes: video ``i + 1`` shows ``videos[i]`` (bottom first).

        Example:
            >>> red = ShapeTrack(track_id=101, shape="square", colour="red", motion="still",
            ...                  caption="a red square", size=4.0, start=(8.0, 8.0),
            ...                  velocity=(0.0, 0.0), growth=1.0, first_frame=0, last_frame=1)
            >>> data = SyntheticDataset.from_tracks([[red]], num_frames=2, height=16, width=16)
            >>> data.gt["annotations"][0]["bbox"]
            [5.0, 5.0, 6.0, 6.0]
        """
        specs = [_Video(i + 1, f"video_{i + 1:05d}", tuple(tracks), seed + i)
                 for i, tracks in enumerate(videos)]
        return cls(specs, num_frames=num_frames, height=height, width=width, seed=seed)

    @property
    def video_ids(self) -> list[int]:
        """Video ids, 1..num_videos."""
        return list(self._videos)

    def tracks(self, video_id: int) -> tuple[ShapeTrack, ...]:
        """The objects of a video, bottom to top in drawing order."""
        return self._video(video_id).tracks

    def _video(self, video_id: int) -> _Video:
        if video_id not in self._videos:
            raise KeyError(f"no video {video_id}; ids are 1..{len(self._videos)}")
        return self._videos[video_id]

    def visible_masks(self, video_id: int) -> np.ndarray:
        """Boolean (T, K, H, W): pixels of track ``k`` that are visible in frame ``t``."""
        video = self._video(video_id)
        shape = (self.num_frames, len(video.tracks), self.height, self.width)
        full = np.zeros(shape, dtype=bool)
        for k, track in enumerate(video.tracks):
            for t in range(self.num_frames):
                geom = track.geometry(
                    t, num_frames=self.num_frames, height=self.height, width=self.width
                )
                if geom is not None:
                    full[t, k] = _shape_mask(track.shape, *geom, self.height, self.width)
        # Later tracks are drawn on top: a pixel belongs to the topmost shape covering it.
        covered = np.zeros((self.num_frames, self.height, self.width), dtype=bool)
        for k in reversed(range(len(video.tracks))):
            full[:, k] &= ~covered
            covered |= full[:, k]
        return full

    def render(self, video_id: int) -> np.ndarray:
        """The frames of one video as a (T, H, W, 3) uint8 array."""
        video = self._video(video_id)
        rng = np.random.default_rng(video.background_seed)
        base = rng.uniform(15, 45, size=3)
        ramp = np.linspace(0.0, 25.0, self.height)[:, None, None]
        texture = rng.uniform(0, 15, size=(self.height, self.width, 1))
        background = np.clip(base + ramp + texture, 0, 89).astype(np.uint8)
        frames = np.broadcast_to(background, (self.num_frames, *background.shape)).copy()
        visible = self.visible_masks(video_id)
        for k, track in enumerate(video.tracks):
            frames[visible[:, k]] = COLOURS[track.colour]
        return frames

    def _build_gt(self, *, progress: bool) -> dict[str, Any]:
        from tqdm import tqdm

        videos, images, annotations = [], [], []
        category_of = {c["name"]: c["id"] for c in CATEGORIES}
        for video in tqdm(self._videos.values(), desc="synthesising", disable=not progress):
            videos.append({
                "id": video.video_id, "name": video.name, "height": self.height,
                "width": self.width, "length": self.num_frames,
            })
            first_image = (video.video_id - 1) * self.num_frames + 1
            images.extend({
                "id": first_image + t, "video_id": video.video_id, "frame_index": t,
                "file_name": f"{video.name}/{t:05d}.png", "height": self.height,
                "width": self.width,
            } for t in range(self.num_frames))
            visible = self.visible_masks(video.video_id)
            present = [(t, k) for t in range(self.num_frames)
                       for k in range(len(video.tracks)) if visible[t, k].any()]
            if not present:
                continue
            stack = np.stack([visible[t, k] for t, k in present], axis=-1)
            rles = mask_utils.encode(np.asfortranarray(stack.astype(np.uint8)))
            boxes = mask_utils.toBbox(rles)
            areas = mask_utils.area(rles)
            for (t, k), rle, box, area in zip(present, rles, boxes, areas):
                track = video.tracks[k]
                annotations.append({
                    "id": len(annotations) + 1, "image_id": first_image + t,
                    "video_id": video.video_id, "track_id": track.track_id,
                    "category_id": category_of[track.shape],
                    "bbox": [float(v) for v in box],
                    "segmentation": {"size": [self.height, self.width],
                                     "counts": rle["counts"].decode("ascii")},
                    "area": float(area), "iscrowd": 0, "caption": track.caption,
                })
        return {
            "info": {
                "description": "benchmark.synthetic moving shapes",
                "seed": self.seed, "num_frames": self.num_frames,
                "image_root": "JPEGImages",
            },
            "videos": videos,
            "images": images,
            "annotations": annotations,
            "categories": [dict(c) for c in CATEGORIES],
        }

    def iter_frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(video_id, frames)`` one video at a time (memory stays one video)."""
        for video_id in self._videos:
            yield video_id, self.render(video_id)

    def save(self, directory: str | Path, *, image_format: str = "png",
             progress: bool = False) -> Path:
        """Write ``gt.json`` and ``JPEGImages/<video name>/<frame:05d>.<ext>``; returns gt path.

        PNG (the default) keeps pixels exact, so masks match the pixels; ``jpg`` is smaller
        but lossy. The ``file_name`` of each image is relative to ``JPEGImages/``.

        Example:
            >>> generate(num_videos=1, num_frames=2).save("/tmp/synth")   # doctest: +SKIP
            PosixPath('/tmp/synth/gt.json')
        """
        from PIL import Image
        from tqdm import tqdm

        if image_format not in {"png", "jpg"}:
            raise ValueError(f"image_format must be 'png' or 'jpg', not {image_format!r}")
        root = Path(directory)
        gt = json.loads(json.dumps(self.gt))
        for image in gt["images"]:
            image["file_name"] = image["file_name"].rsplit(".", 1)[0] + f".{image_format}"
        for video_id, frames in tqdm(self.iter_frames(), total=len(self._videos),
                                     desc="writing frames", disable=not progress):
            folder = root / "JPEGImages" / self._videos[video_id].name
            folder.mkdir(parents=True, exist_ok=True)
            for t, frame in enumerate(frames):
                Image.fromarray(frame).save(folder / f"{t:05d}.{image_format}")
        # The GT goes last: a folder with gt.json is a complete one.
        write_json_atomic(gt, root / "gt.json")
        return root / "gt.json"


def generate(
    *,
    num_videos: int,
    num_frames: int = 16,
    height: int = 64,
    width: int = 64,
    max_objects: int = 3,
    seed: int = 0,
    progress: bool = False,
) -> SyntheticDataset:
    """Generate ``num_videos`` synthetic DVOC videos (ground truth now, frames on demand).

    Example:
        >>> data = generate(num_videos=3, num_frames=8, height=48, width=64, seed=1)
        >>> len(data.gt["videos"]), len(data.gt["images"])
        (3, 24)
    """
    if num_videos < 1 or num_frames < 1 or height < 8 or width < 8:
        raise ValueError("need num_videos >= 1, num_frames >= 1 and frames of at least 8x8")
    if not 1 <= max_objects <= len(COLOURS):
        # Colours are unique within a video so that a caption names one object.
        raise ValueError(f"max_objects must be between 1 and {len(COLOURS)}")
    videos = [
        _sample_video(v, num_frames=num_frames, height=height, width=width,
                      max_objects=max_objects, seed=seed)
        for v in range(1, num_videos + 1)
    ]
    return SyntheticDataset(videos, num_frames=num_frames, height=height, width=width,
                            seed=seed, progress=progress)


@dataclass(frozen=True)
class _Corruption:
    shift: float          # std of the mask/box shift, as a fraction of the object's size
    reshape: float        # probability that a mask is dilated or eroded by one pixel
    miss_track: float     # probability that a GT track is not predicted at all
    drop_frame: float     # probability that one frame of a predicted track is missing
    switch: float         # probability of an identity switch inside a track
    false_tracks: float   # expected number of false-positive tracks per video
    caption_right: float  # probability that a track's caption is right (maybe reworded)
    score: tuple[float, float]
    false_score: tuple[float, float]


_QUALITIES: dict[str, _Corruption] = {
    "good": _Corruption(0.04, 0.1, 0.0, 0.02, 0.05, 0.2, 0.9, (0.7, 0.99), (0.55, 0.75)),
    "fair": _Corruption(0.12, 0.3, 0.1, 0.08, 0.2, 0.8, 0.6, (0.55, 0.95), (0.55, 0.9)),
    "poor": _Corruption(0.22, 0.5, 0.3, 0.2, 0.45, 2.0, 0.25, (0.3, 0.9), (0.4, 0.9)),
}


def _replace_word(caption: str, vocabulary: list[str], rng: np.random.Generator) -> str | None:
    # Swap one vocabulary word (a colour or a shape) for another one; None if none is present.
    for word in vocabulary:
        pattern = rf"\b{re.escape(word)}\b"
        if re.search(pattern, caption):
            other = [w for w in vocabulary if w != word]
            return re.sub(pattern, other[rng.integers(len(other))], caption, count=1)
    return None


def _motion_phrase(caption: str) -> tuple[str, str] | None:
    # The (motion, phrase) a caption ends with; longest phrase first ("moving left" vs "left").
    found = [(m, p) for m, phrases in _MOTION_PHRASES.items() for p in phrases
             if caption.endswith(p)]
    return max(found, key=lambda mp: len(mp[1])) if found else None


def _reword(caption: str, rng: np.random.Generator) -> str:
    # Same meaning, other words: another phrase for the same motion, or the other article.
    found = _motion_phrase(caption)
    if found is not None:
        motion, phrase = found
        other = [p for p in _MOTION_PHRASES[motion] if p != phrase]
        return caption[: -len(phrase)] + other[rng.integers(len(other))]
    if caption.startswith("a "):
        return "the " + caption[2:]
    if caption.startswith("the "):
        return "a " + caption[4:]
    return caption


def _corrupt_caption(caption: str, right: bool, rng: np.random.Generator,
                     fallback: list[str]) -> str:
    if right:
        return caption if rng.random() < 0.5 else _reword(caption, rng)
    for kind in rng.permutation(["colour", "shape", "motion"]):
        if kind == "colour":
            wrong = _replace_word(caption, list(COLOURS), rng)
        elif kind == "shape":
            wrong = _replace_word(caption, list(SHAPES), rng)
        else:
            found = _motion_phrase(caption)
            wrong = None
            if found is not None:
                others = [m for m in MOTIONS if m != found[0]]
                new = others[rng.integers(len(others))]
                wrong = caption[: -len(found[1])] + _MOTION_PHRASES[new][0]
        if wrong is not None:
            return wrong
    # Not one of our captions: borrow another object's caption instead.
    others = [c for c in fallback if c != caption]
    return others[rng.integers(len(others))] if others else caption


def _shift_mask(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    src = mask[max(0, -dy): h - max(0, dy), max(0, -dx): w - max(0, dx)]
    out[max(0, dy): max(0, dy) + src.shape[0], max(0, dx): max(0, dx) + src.shape[1]] = src
    return out


def make_submission(
    gt: dict[str, Any] | str | Path, *, quality: str, seed: int
) -> list[dict[str, Any]]:
    """Predictions in the reference per-frame format, made by corrupting the ground truth.

    ``quality`` is ``"good"`` (small jitter, mostly right captions, few identity switches),
    ``"fair"`` or ``"poor"`` (missed tracks, false positives, identity switches, wrong colours,
    shapes or motions in captions, some scores at or below 0.5, which the scorer drops). One
    score and one caption per predicted track. Masks are shifted (and sometimes dilated or
    eroded) copies of the GT masks and each box is the bounding box of its mask; for box-only
    ground truth the boxes are shifted and rescaled instead.

    Example:
        >>> data = generate(num_videos=2, seed=0)
        >>> good = make_submission(data.gt, quality="good", seed=1)
        >>> poor = make_submission(data.gt, quality="poor", seed=1)
        >>> min(p["score"] for p in good) > 0.5
        True
    """
    from scipy import ndimage

    if quality not in _QUALITIES:
        raise ValueError(f"quality must be one of {sorted(_QUALITIES)}, not {quality!r}")
    spec = _QUALITIES[quality]
    data, source = read_json(gt, what="ground truth")
    if not isinstance(data, dict):
        raise InputError("expected a JSON object (COCO-video ground truth)", source=source)
    for key in ("videos", "images", "annotations"):
        if not isinstance(data.get(key), list):
            raise InputError("missing or not a list", source=source, field=key)
    frames_of: dict[int, list[dict[str, Any]]] = {}
    for image in data["images"]:
        frames_of.setdefault(image["video_id"], []).append(image)
    image_video = {img["id"]: img["video_id"] for img in data["images"]}
    tracks: dict[int, dict[int, list[dict[str, Any]]]] = {}
    for index, ann in enumerate(data["annotations"]):
        for field in ("image_id", "track_id", "bbox"):
            if field not in ann:
                raise InputError("missing", source=source, record=index, field=field)
        if ann["image_id"] not in image_video:
            raise InputError(f"unknown image id {ann['image_id']}", source=source,
                             record=index, field="image_id")
        video_id = image_video[ann["image_id"]]
        tracks.setdefault(video_id, {}).setdefault(ann["track_id"], []).append(ann)
    captions = sorted({a.get("caption", "") for a in data["annotations"]} - {""})
    category_of = {c["name"]: c["id"] for c in data.get("categories", [])}
    category_ids = sorted(category_of.values()) or [1]

    predictions: list[dict[str, Any]] = []
    for video in data["videos"]:
        vid = video["id"]
        rng = np.random.default_rng([seed, vid, list(_QUALITIES).index(quality)])
        height, width = int(video["height"]), int(video["width"])
        frames = sorted(frames_of.get(vid, []), key=lambda img: img["frame_index"])
        frame_pos = {img["id"]: i for i, img in enumerate(frames)}
        next_id = vid * 1000

        def emit(image_id: int, track_id: int, mask: np.ndarray | None,
                 box: list[float] | None, category: int, score: float, caption: str) -> None:
            # With a mask, the box is the mask's bounding box (as in the ground truth).
            pred = {"image_id": image_id, "video_id": vid, "track_id": track_id,
                    "category_id": category, "bbox": box, "score": score, "caption": caption}
            if mask is not None:
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                pred["bbox"] = [float(v) for v in mask_utils.toBbox(rle)]
                pred["segmentation"] = {"size": [height, width],
                                        "counts": rle["counts"].decode("ascii")}
            predictions.append(pred)

        for track_id, anns in tracks.get(vid, {}).items():
            if rng.random() < spec.miss_track:
                continue
            anns = sorted(anns, key=lambda a: frame_pos[a["image_id"]])
            next_id += 1
            pred_id = next_id
            switch_at = (int(rng.integers(1, len(anns))) if len(anns) > 1
                         and rng.random() < spec.switch else None)
            caption = _corrupt_caption(anns[0].get("caption", ""), rng.random() < spec.caption_right,
                                       rng, captions)
            category = anns[0].get("category_id", category_ids[0])
            for word in SHAPES:
                if re.search(rf"\b{word}\b", caption) and word in category_of:
                    category = category_of[word]
                    break
            score = round(float(rng.uniform(*spec.score)), 3)
            for i, ann in enumerate(anns):
                if i == switch_at:
                    next_id += 1
                    pred_id = next_id
                if rng.random() < spec.drop_frame:
                    continue
                x, y, w, h = (float(v) for v in ann["bbox"])
                dx = int(round(rng.normal(0, spec.shift * max(w, 1.0))))
                dy = int(round(rng.normal(0, spec.shift * max(h, 1.0))))
                if "segmentation" in ann:
                    mask = mask_utils.decode(ann["segmentation"]).astype(bool)
                    mask = _shift_mask(mask, dx, dy)
                    if rng.random() < spec.reshape:
                        grow = rng.random() < 0.5
                        mask = (ndimage.binary_dilation if grow else ndimage.binary_erosion)(mask)
                    if not mask.any():
                        continue
                    emit(ann["image_id"], pred_id, mask, None, category, score, caption)
                else:
                    scale = float(np.exp(rng.normal(0, spec.shift)))
                    box = [round(x + dx, 2), round(y + dy, 2), round(w * scale, 2),
                           round(h * scale, 2)]
                    emit(ann["image_id"], pred_id, None, box, category, score, caption)

        has_masks = any("segmentation" in a for anns in tracks.get(vid, {}).values() for a in anns)
        for _ in range(int(rng.poisson(spec.false_tracks)) if frames else 0):
            next_id += 1
            span = int(rng.integers(1, len(frames) + 1))
            start = int(rng.integers(0, len(frames) - span + 1))
            r = float(rng.uniform(0.06, 0.15) * min(height, width))
            cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
            vx, vy = rng.normal(0, 1.5, size=2)
            colour, shape = list(COLOURS)[rng.integers(len(COLOURS))], SHAPES[rng.integers(len(SHAPES))]
            caption = _caption(rng, colour, shape, MOTIONS[rng.integers(len(MOTIONS))], "")
            score = round(float(rng.uniform(*spec.false_score)), 3)
            category = category_of.get(shape, category_ids[rng.integers(len(category_ids))])
            for t in range(start, start + span):
                px, py = cx + vx * (t - start), cy + vy * (t - start)
                if has_masks:
                    mask = _shape_mask("circle", px, py, r, height, width)
                    if mask.any():
                        emit(frames[t]["id"], next_id, mask, None, category, score, caption)
                else:
                    box = [round(px - r, 2), round(py - r, 2), round(2 * r, 2), round(2 * r, 2)]
                    emit(frames[t]["id"], next_id, None, box, category, score, caption)
    return predictions


def write_sample(directory: str | Path) -> dict[str, Path]:
    """(Re)generate the bundled sample: ``gt.json`` and ``submissions/{good,fair,poor}.json``.

    The output is bit-identical from run to run; returns the written paths by name.

    Example:
        >>> write_sample("/tmp/sample")["gt"]   # doctest: +SKIP
        PosixPath('/tmp/sample/gt.json')
    """
    root = Path(directory)
    data = generate(**SAMPLE_CONFIG)
    written = {"gt": root / "gt.json"}
    write_json_atomic(data.gt, written["gt"])
    for quality in SAMPLE_QUALITIES:
        written[quality] = root / "submissions" / f"{quality}.json"
        write_json_atomic(make_submission(data.gt, quality=quality, seed=SAMPLE_CONFIG["seed"]),
                          written[quality])
    return written
