"""Training and inference data: COCO-video ground truth plus frames, cut into clips.

A data spec is either a folder (``gt.json`` + ``JPEGImages/<file_name>``, as written by
``benchmark.synthetic``'s ``save``), a ``gt.json`` path, or ``synthetic:KEY=VALUE,...`` which
generates the procedural moving-shapes set in memory (keys of
``benchmark.synthetic.generate``: num_videos, num_frames, height, width, max_objects, seed).

Example:
    >>> src = load_source("synthetic:num_videos=2,num_frames=4,seed=0")
    >>> len(src.videos), src.frames(1).shape
    (2, (4, 64, 64, 3))
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch.nn import functional as F

from benchmark.errors import InputError
from benchmark.structures.masks import to_rle
from reference_model.losses import box_xyxy_to_cxcywh
from reference_model.matcher import ClipTargets


@dataclass
class VideoSource:
    """Ground truth plus a way to get each video's frames ((T, H, W, 3) uint8)."""

    name: str
    gt: dict
    render: Callable[[int], np.ndarray]
    # Reads some frames of a video without the others ((video id, frame positions) -> (n, H,
    # W, 3)); sources without it render the whole video.
    read: Callable[[int, list[int]], np.ndarray] | None = None
    videos: dict[int, dict] = field(init=False)
    frame_images: dict[int, list[dict]] = field(init=False)
    _cache: dict[int, np.ndarray] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("videos", "images", "annotations", "categories"):
            if not isinstance(self.gt.get(key), list):
                raise InputError(f"ground truth needs a '{key}' list", source=self.name, field=key)
        self.videos = {int(v["id"]): v for v in self.gt["videos"]}
        images = defaultdict(list)
        for i, image in enumerate(self.gt["images"]):
            for key in ("id", "video_id", "frame_index"):
                if key not in image:
                    raise InputError("image record lacks a field", source=self.name, record=i, field=key)
            images[int(image["video_id"])].append(image)
        self.frame_images = {v: sorted(imgs, key=lambda im: im["frame_index"]) for v, imgs in images.items()}

    def frames(self, video_id: int) -> np.ndarray:
        """(T, H, W, 3) uint8 frames, cached: tiny videos are rendered once per run."""
        if video_id not in self._cache:
            self._cache[video_id] = np.asarray(self.render(video_id))
        return self._cache[video_id]

    def frame_slice(self, video_id: int, positions: list[int]) -> np.ndarray:
        """(n, H, W, 3) uint8 frames at ``positions`` (0-based, in frame order), read one by
        one where the source can, so that long videos never sit in memory whole."""
        if self.read is not None:
            return np.asarray(self.read(video_id, positions))
        return self.frames(video_id)[positions]


def _parse_synthetic(spec: str) -> dict[str, int]:
    options = {}
    for item in filter(None, spec.split(":", 1)[1].split(",")):
        key, _, value = item.partition("=")
        if not value.strip().lstrip("-").isdigit():
            raise InputError(f"synthetic option {item!r} must be KEY=INTEGER", source=spec)
        options[key.strip()] = int(value)
    return options


def load_source(spec: str | Path) -> VideoSource:
    """Open a data spec (folder, gt.json path or ``synthetic:...``)."""
    spec = str(spec)
    if spec.startswith("synthetic:"):
        from benchmark.synthetic import generate

        try:
            data = generate(**_parse_synthetic(spec))
        except TypeError as exc:
            raise InputError(f"bad synthetic option: {exc}", source=spec) from None
        return VideoSource(name=spec, gt=data.gt, render=data.render)
    path = Path(spec)
    gt_path = path / "gt.json" if path.is_dir() else path
    if not gt_path.is_file():
        raise InputError("no such ground-truth file or folder", source=str(gt_path))
    try:
        gt = json.loads(gt_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc}", source=str(gt_path)) from None
    root = gt_path.parent / gt.get("info", {}).get("image_root", "JPEGImages")

    def read(video_id: int, positions: list[int]) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        images = source.frame_images[video_id]
        frames = []
        for i in positions:
            path = root / images[i]["file_name"]
            try:
                with Image.open(path) as image:
                    frames.append(np.asarray(image.convert("RGB")))
            except (OSError, UnidentifiedImageError) as exc:
                raise InputError(f"cannot read frame: {exc}", source=str(path), record=images[i].get("id"),
                                 field="file_name") from None
        return np.stack(frames)

    def render(video_id: int) -> np.ndarray:
        return read(video_id, list(range(len(source.frame_images[video_id]))))

    source = VideoSource(name=str(gt_path), gt=gt, render=render, read=read)
    return source


@dataclass(frozen=True)
class Resize:
    """Short edge to ``short_edge`` then zero padding to multiples of 32."""

    height: int
    width: int
    short_edge: int

    @property
    def scale(self) -> float:
        return self.short_edge / min(self.height, self.width)

    @property
    def resized(self) -> tuple[int, int]:
        return round(self.height * self.scale), round(self.width * self.scale)

    @property
    def padded(self) -> tuple[int, int]:
        h, w = self.resized
        return -(-h // 32) * 32, -(-w // 32) * 32

    def images(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (T, 3, Hp, Wp) floats in [0, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
        return self._fit(x, mode="bilinear")

    def masks(self, masks: torch.Tensor) -> torch.Tensor:
        """(..., H, W) {0, 1} -> (..., Hp, Wp)."""
        lead = masks.shape[:-2]
        x = self._fit(masks.reshape(-1, 1, *masks.shape[-2:]).float(), mode="nearest")
        return x.reshape(*lead, *x.shape[-2:])

    def _fit(self, x: torch.Tensor, *, mode: str) -> torch.Tensor:
        if self.resized != (self.height, self.width):
            x = F.interpolate(x, size=self.resized, mode=mode, **({"align_corners": False} if mode == "bilinear" else {}))
        h, w = self.resized
        hp, wp = self.padded
        return F.pad(x, (0, wp - w, 0, hp - h))


class ClipDataset(torch.utils.data.Dataset):
    """Every window of ``clip_len`` consecutive frames of every video, with its targets.

    Objects are the tracks with an annotation in at least one frame of the clip; categories
    map to class indices in ``category_ids`` order.
    """

    def __init__(self, *, source: VideoSource, clip_len: int, short_edge: int,
                 category_ids: list[int], tokenize: Callable[[str], list[int]]) -> None:
        self.source = source
        self.clip_len = clip_len
        self.short_edge = short_edge
        self.label_of = {c: i for i, c in enumerate(category_ids)}
        self.tokenize = tokenize
        image_to_frame = {}
        for video_id, images in source.frame_images.items():
            for image in images:
                image_to_frame[int(image["id"])] = (video_id, int(image["frame_index"]))
        self.annotations: dict[int, dict[int, list[tuple[int, dict]]]] = defaultdict(lambda: defaultdict(list))
        for i, ann in enumerate(source.gt["annotations"]):
            for key in ("image_id", "track_id", "bbox", "category_id"):
                if key not in ann:
                    raise InputError("annotation lacks a field", source=source.name, record=i, field=key)
            if int(ann["image_id"]) not in image_to_frame:
                raise InputError("image_id is not in the images table", source=source.name, record=i, field="image_id")
            if ann["category_id"] not in self.label_of:
                raise InputError("category_id is not in the categories", source=source.name, record=i, field="category_id")
            video_id, frame = image_to_frame[int(ann["image_id"])]
            self.annotations[video_id][frame].append((i, ann))
        self.index = [(v, s) for v, images in sorted(source.frame_images.items())
                      for s in range(max(len(images) - clip_len, 0) + 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ClipTargets]:
        video_id, start = self.index[i]
        frames = self.source.frames(video_id)[start: start + self.clip_len]
        t, h, w = frames.shape[:3]
        resize = Resize(h, w, self.short_edge)
        tracks: dict[int, dict] = {}
        for k in range(t):
            for record, ann in self.annotations[video_id].get(start + k, []):
                track = tracks.setdefault(int(ann["track_id"]), {
                    "label": self.label_of[ann["category_id"]], "caption": ann.get("caption") or "",
                    "masks": torch.zeros(t, h, w), "boxes": torch.zeros(t, 4), "valid": torch.zeros(t, dtype=torch.bool)})
                x, y, bw, bh = ann["bbox"]
                track["boxes"][k] = torch.tensor([x, y, x + bw, y + bh], dtype=torch.float32)
                track["valid"][k] = True
                track["masks"][k] = self._mask(ann, record, h, w)
        hp, wp = resize.padded
        scale = torch.tensor([wp, hp, wp, hp], dtype=torch.float32) / resize.scale
        ordered = [tracks[k] for k in sorted(tracks)]
        targets = ClipTargets(
            labels=torch.tensor([tr["label"] for tr in ordered], dtype=torch.long),
            masks=resize.masks(torch.stack([tr["masks"] for tr in ordered])) if ordered else torch.zeros(0, t, hp, wp),
            boxes=box_xyxy_to_cxcywh(torch.stack([tr["boxes"] for tr in ordered]) / scale) if ordered else torch.zeros(0, t, 4),
            box_valid=torch.stack([tr["valid"] for tr in ordered]) if ordered else torch.zeros(0, t, dtype=torch.bool),
            caption_ids=[self.tokenize(tr["caption"]) if tr["caption"] else [] for tr in ordered],
        )
        return resize.images(frames), targets

    def _mask(self, ann: dict, record: int, h: int, w: int) -> torch.Tensor:
        seg = ann.get("segmentation")
        if seg is None:
            # Box-only data: the box is the best mask there is.
            x, y, bw, bh = ann["bbox"]
            mask = torch.zeros(h, w)
            mask[int(y): int(np.ceil(y + bh)), int(x): int(np.ceil(x + bw))] = 1
            return mask
        try:
            rle = to_rle(seg, h, w)
        except ValueError as exc:
            raise InputError(str(exc), source=self.source.name, record=record, field="segmentation") from None
        return torch.from_numpy(mask_utils.decode(rle).astype(np.float32))


def collate(batch: list[tuple[torch.Tensor, ClipTargets]]) -> tuple[torch.Tensor, list[ClipTargets]]:
    """Stack clips (they share one size within a dataset) and keep targets as a list."""
    return torch.stack([clip for clip, _ in batch]), [tgt for _, tgt in batch]
