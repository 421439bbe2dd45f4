"""Training and inference data: COCO-video ground truth plus frames, cut into clips.

A data spec is either a folder (``gt.json`` + ``JPEGImages/<file_name>``, as written by
``benchmark.synthetic``'s ``save`` and ``benchmark convert``), a ``gt.json`` path, or
``synthetic:KEY=VALUE,...`` which generates the procedural moving-shapes set in memory (keys
of ``benchmark.synthetic.generate``: num_videos, num_frames, height, width, max_objects,
seed). Frames come from JPEG folders as LV-VIS / YouTube-VIS ship them, or from a video file
per video (``videos[i].file_name`` ending in .mp4, .avi, ...) read through OpenCV under
``info.video_root`` (default ``videos/``). A COCO image set (LVIS, COCO: no ``videos``) is
read as one-frame videos, each object its own track.

Example:
    >>> src = load_source("synthetic:num_videos=2,num_frames=4,seed=0")
    >>> len(src.videos), src.frames(1).shape
    (2, (4, 64, 64, 3))
"""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch.nn import functional as F

from benchmark.errors import InputError, ToolMissingError
from benchmark.structures.masks import to_rle
from reference_model.clip_features import FrameFeatures
from reference_model.losses import box_xyxy_to_cxcywh
from reference_model.matcher import ClipTargets


_CACHED_VIDEOS = 8
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


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
    _cache: OrderedDict = field(init=False, default_factory=OrderedDict)

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
        """(T, H, W, 3) uint8 frames. The last few rendered videos are kept: a clip's
        neighbours reuse them, and memory stays flat however many videos a run visits."""
        if video_id in self._cache:
            self._cache.move_to_end(video_id)
            return self._cache[video_id]
        frames = np.asarray(self.render(video_id))
        self._cache[video_id] = frames
        if len(self._cache) > _CACHED_VIDEOS:
            self._cache.popitem(last=False)
        return frames

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
    if isinstance(gt, dict) and "videos" not in gt and isinstance(gt.get("images"), list):
        gt = images_as_videos(gt, source=str(gt_path))
    info = gt.get("info") if isinstance(gt.get("info"), dict) else {}
    root = gt_path.parent / info.get("image_root", "JPEGImages")
    video_root = gt_path.parent / info.get("video_root", "videos")

    def read(video_id: int, positions: list[int]) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        images = source.frame_images[video_id]
        video_file = source.videos[video_id].get("file_name")
        if isinstance(video_file, str) and video_file.lower().endswith(VIDEO_SUFFIXES):
            return read_video_frames(video_root / video_file,
                                     [int(images[i]["frame_index"]) for i in positions])
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


def images_as_videos(gt: dict, *, source: str) -> dict:
    """A COCO image set (LVIS, COCO) as one-frame videos: each image a video, each object
    its own track (the paper trains on LVISCap images as pseudo-videos).

    Example:
        >>> gt = images_as_videos({"images": [{"id": 4, "file_name": "a.jpg", "height": 2,
        ...     "width": 3}], "annotations": [{"id": 9, "image_id": 4, "bbox": [0, 0, 1, 1],
        ...     "category_id": 1}], "categories": [{"id": 1, "name": "cat"}]}, source="x.json")
        >>> gt["videos"][0]["length"], gt["images"][0]["frame_index"], gt["annotations"][0]["track_id"]
        (1, 0, 9)
    """
    images, videos = [], []
    for i, image in enumerate(gt["images"]):
        if not isinstance(image, dict) or "id" not in image:
            raise InputError("image record lacks an id", source=source, record=i, field="id")
        videos.append({"id": image["id"], "name": str(image.get("file_name", image["id"])),
                       "height": image.get("height"), "width": image.get("width"), "length": 1})
        images.append({**image, "video_id": image["id"], "frame_index": 0})
    annotations = []
    for i, ann in enumerate(gt.get("annotations") or []):
        if not isinstance(ann, dict) or "id" not in ann or "image_id" not in ann:
            raise InputError("annotation lacks its id or image_id", source=source, record=i,
                             field="id")
        annotations.append({**ann, "video_id": ann["image_id"], "track_id": ann["id"]})
    return {**gt, "videos": videos, "images": images, "annotations": annotations}


def read_video_frames(path: Path, frame_numbers: list[int]) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB frames ``frame_numbers`` (0-based) of a video file, read with
    OpenCV, seeking only where the frames are not consecutive."""
    try:
        import cv2
    except ImportError:
        raise ToolMissingError("reading video files needs OpenCV: pip install "
                               "'dvoc-benchmark[captioning]' (opencv-python-headless)") from None
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise InputError("cannot open the video file", source=str(path), field="file_name")
    try:
        wanted = sorted(set(frame_numbers))
        read: dict[int, np.ndarray] = {}
        position = -1
        for number in wanted:
            if number != position + 1:
                capture.set(cv2.CAP_PROP_POS_FRAMES, number)
            ok, frame = capture.read()
            if not ok:
                raise InputError(f"cannot read frame {number} of the video (it has "
                                 f"{int(capture.get(cv2.CAP_PROP_FRAME_COUNT))} frames)",
                                 source=str(path), field="file_name")
            read[number] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            position = number
    finally:
        capture.release()
    return np.stack([read[n] for n in frame_numbers])


@dataclass(frozen=True)
class Resize:
    """Short edge to ``short_edge`` (the long edge at most ``max_size``, as detectron2's
    ``ResizeShortestEdge``) then zero padding to multiples of 32."""

    height: int
    width: int
    short_edge: int
    max_size: int | None = None

    @property
    def scale(self) -> float:
        scale = self.short_edge / min(self.height, self.width)
        if self.max_size is not None:
            scale = min(scale, self.max_size / max(self.height, self.width))
        return scale

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
    map to class indices in ``category_ids`` order. A video shorter than a clip (an image
    read as a one-frame video) repeats its last frame. Only a clip's own frames are read.

    An item is a window index, or ``(window index, draw)``: the draw seeds that clip's
    augmentation (a horizontal flip of the whole clip, and a short edge picked from
    ``short_edges``, as the official training mappers do), so that a run's augmentations
    depend on its order alone, not on which worker loads a clip. With ``skip_broken`` a clip
    with an unreadable frame gives ``None`` (``collate`` drops and counts it) instead of an
    error naming the file.

    ``clip_features`` (a zero-shot class head's CLIP image features, e.g. the official
    ``*_clip_feature.pkl``): each clip carries the feature of its first frame, found by the
    frame's ``file_name`` or, in a file keyed by image id (LVIS), by its image id, as the
    official training looks it up. Every frame a clip can start on is checked here, so a
    missing feature stops the run before training starts.
    """

    def __init__(self, *, source: VideoSource, clip_len: int, short_edge: int,
                 category_ids: list[int], tokenize: Callable[[str], list[int]],
                 short_edges: tuple[int, ...] | None = None, max_size: int | None = None,
                 augment: bool = False, skip_broken: bool = False,
                 clip_features: FrameFeatures | None = None) -> None:
        self.source = source
        self.clip_len = clip_len
        self.short_edge = short_edge
        self.short_edges = tuple(short_edges or (short_edge,))
        self.max_size = max_size
        self.augment = augment
        self.skip_broken = skip_broken
        self.label_of = {c: i for i, c in enumerate(category_ids)}
        self.tokenize = tokenize
        image_to_frame = {}
        for video_id, images in source.frame_images.items():
            for position, image in enumerate(images):
                image_to_frame[int(image["id"])] = (video_id, position)
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
        # Each window's first-frame feature row, looked up once, up front.
        self.clip_features, self.feature_rows = None, None
        if clip_features is not None:
            self.clip_features = clip_features.matrix
            self.feature_rows = clip_features.image_rows([source.frame_images[v][s] for v, s in self.index],
                                                         source=source.name)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, ClipTargets] | None:
        i, draw = item if isinstance(item, tuple) else (item, None)
        video_id, start = self.index[i]
        length = len(self.source.frame_images[video_id])
        positions = [min(start + k, length - 1) for k in range(self.clip_len)]
        try:
            frames = self.source.frame_slice(video_id, positions)
        except InputError:
            if self.skip_broken:
                return None
            raise
        rng = np.random.default_rng(draw) if self.augment and draw is not None else None
        flip = rng is not None and rng.random() < 0.5
        short_edge = self.short_edges[int(rng.integers(len(self.short_edges)))] if rng is not None \
            else self.short_edge
        t, h, w = frames.shape[:3]
        if flip:
            frames = frames[:, :, ::-1]
        resize = Resize(h, w, short_edge, self.max_size)
        tracks: dict[int, dict] = {}
        for k, position in enumerate(positions):
            for record, ann in self.annotations[video_id].get(position, []):
                track = tracks.setdefault(int(ann["track_id"]), {
                    "label": self.label_of[ann["category_id"]], "caption": ann.get("caption") or "",
                    "masks": torch.zeros(t, h, w), "boxes": torch.zeros(t, 4), "valid": torch.zeros(t, dtype=torch.bool)})
                x, y, bw, bh = ann["bbox"]
                if flip:
                    x = w - x - bw
                track["boxes"][k] = torch.tensor([x, y, x + bw, y + bh], dtype=torch.float32)
                track["valid"][k] = True
                mask = self._mask(ann, record, h, w)
                track["masks"][k] = mask.flip(-1) if flip else mask
        hp, wp = resize.padded
        scale = torch.tensor([wp, hp, wp, hp], dtype=torch.float32) / resize.scale
        ordered = [tracks[k] for k in sorted(tracks)]
        rh, rw = resize.resized
        pixel_valid = torch.zeros(hp, wp, dtype=torch.bool)
        pixel_valid[:rh, :rw] = True
        targets = ClipTargets(
            labels=torch.tensor([tr["label"] for tr in ordered], dtype=torch.long),
            masks=resize.masks(torch.stack([tr["masks"] for tr in ordered])) if ordered else torch.zeros(0, t, hp, wp),
            boxes=box_xyxy_to_cxcywh(torch.stack([tr["boxes"] for tr in ordered]) / scale) if ordered else torch.zeros(0, t, 4),
            box_valid=torch.stack([tr["valid"] for tr in ordered]) if ordered else torch.zeros(0, t, dtype=torch.bool),
            caption_ids=[self.tokenize(tr["caption"]) if tr["caption"] else [] for tr in ordered],
            pixel_valid=pixel_valid,
            track_ids=torch.tensor(sorted(tracks), dtype=torch.long),
            clip_features=(None if self.clip_features is None
                           else self.clip_features[self.feature_rows[i]][None].clone().float()),
        )
        return resize.images(np.ascontiguousarray(frames)), targets

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


def category_frequencies(sources: list[VideoSource], category_ids: list[int]) -> torch.Tensor:
    """Federated-loss sampling weights of the zero-shot class head, one per category:
    sqrt(image count), as the official training weighs them. A category's image count is its
    ``image_count`` field where the categories carry one (LVIS), else the frames of the
    videos that contain it (the official ``get_lvvis_cat_info``); rare LVIS categories
    (``frequency`` "r") and novel ones ("n") weigh 0, so they are never drawn as negatives.
    Counts add up over the sources.

    Example:
        >>> src = load_source("synthetic:num_videos=3,num_frames=4,seed=0")
        >>> weights = category_frequencies([src], [c["id"] for c in src.gt["categories"]])
        >>> [round(w * w) for w in weights.tolist()]  # frames of the videos showing each shape
        [4, 8, 0, 0, 4, 8]
    """
    position = {c: i for i, c in enumerate(category_ids)}
    counts = torch.zeros(len(category_ids), dtype=torch.float64)
    held_out = torch.zeros(len(category_ids), dtype=torch.bool)
    for source in sources:
        declared = {}
        for c in source.gt["categories"]:
            if c.get("id") in position:
                if c.get("frequency") in ("r", "n"):
                    held_out[position[c["id"]]] = True
                if isinstance(c.get("image_count"), (int, float)):
                    declared[c["id"]] = float(c["image_count"])
        video_of = {int(im["id"]): int(im["video_id"]) for im in source.gt["images"]}
        videos: dict[int, set[int]] = defaultdict(set)
        for ann in source.gt["annotations"]:
            videos[ann["category_id"]].add(video_of.get(int(ann["image_id"]), -1))
        for category, i in position.items():
            if category in declared:
                counts[i] += declared[category]
            else:
                counts[i] += sum(len(source.frame_images.get(v, ())) for v in videos.get(category, ()))
    return torch.where(held_out, 0.0, counts.sqrt()).float()


def collate(batch: list[tuple[torch.Tensor, ClipTargets] | None]
            ) -> tuple[torch.Tensor, list[ClipTargets], int]:
    """Batch clips of any sizes as the official mappers do: zero padding to the largest
    height and width, each clip's ``pixel_valid`` marking its own pixels, boxes re-expressed
    as fractions of the padded batch frame. Returns (clips, targets, clips skipped as
    unreadable).

    Example:
        >>> a = (torch.ones(2, 3, 32, 64), ClipTargets(labels=torch.zeros(0, dtype=torch.long),
        ...      masks=torch.zeros(0, 2, 32, 64), boxes=torch.zeros(0, 2, 4),
        ...      box_valid=torch.zeros(0, 2, dtype=torch.bool), caption_ids=[]))
        >>> clips, targets, skipped = collate([a, None])
        >>> clips.shape, skipped
        (torch.Size([1, 2, 3, 32, 64]), 1)
    """
    items = [item for item in batch if item is not None]
    skipped = len(batch) - len(items)
    if not items:
        return torch.zeros(0), [], skipped
    height = max(clip.shape[-2] for clip, _ in items)
    width = max(clip.shape[-1] for clip, _ in items)
    clips, targets = [], []
    for clip, tgt in items:
        h, w = clip.shape[-2:]
        pad = (0, width - w, 0, height - h)
        valid = tgt.pixel_valid if tgt.pixel_valid is not None else torch.ones(h, w, dtype=torch.bool)
        clips.append(F.pad(clip, pad))
        targets.append(replace(
            tgt, masks=F.pad(tgt.masks, pad),
            boxes=tgt.boxes * torch.tensor([w / width, h / height, w / width, h / height]),
            pixel_valid=F.pad(valid, pad)))
    return torch.stack(clips), targets, skipped


class VideoClips(torch.utils.data.Dataset):
    """Whole videos for video-level caption tuning: an item is up to ``t_agg`` clips of one
    video, spread uniformly over it (as inference aggregates a track's clips), all with the
    same augmentation draw. Its length is the number of videos; items as ``ClipDataset``'s
    (an index, or ``(index, draw)``), given as a list of ``ClipDataset`` items.

    Example:
        >>> src = load_source("synthetic:num_videos=2,num_frames=9,seed=0")
        >>> ids = [c["id"] for c in src.gt["categories"]]
        >>> clips = ClipDataset(source=src, clip_len=2, short_edge=32, category_ids=ids,
        ...                     tokenize=lambda s: [1])
        >>> videos = VideoClips(clips, t_agg=3)
        >>> len(videos), [start for _, start in (clips.index[w] for w in videos.windows[0])]
        (2, [0, 4, 7])
    """

    def __init__(self, clips: ClipDataset, *, t_agg: int) -> None:
        self.clips = clips
        by_video: dict[int, list[int]] = defaultdict(list)
        for window, (video_id, _) in enumerate(clips.index):
            by_video[video_id].append(window)
        self.windows = []
        for video_id in sorted(by_video):
            windows = by_video[video_id]
            chosen = torch.linspace(0, len(windows) - 1, min(t_agg, len(windows))).round().long()
            self.windows.append([windows[i] for i in chosen.tolist()])

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, item: int | tuple[int, int]) -> list | None:
        i, draw = item if isinstance(item, tuple) else (item, None)
        clips = [self.clips[(w, draw) if draw is not None else w] for w in self.windows[i]]
        return None if any(c is None for c in clips) else clips


def collate_videos(batch: list[list | None]) -> tuple[torch.Tensor, list[ClipTargets], int]:
    """:func:`collate` for :class:`VideoClips` items: the clips of the batch's video become
    the batch (a video-level caption step reads one video, as the paper's batch of 1)."""
    clips = [clip for video in batch if video is not None for clip in video]
    out, targets, skipped = collate(clips)
    return out, targets, skipped + sum(video is None for video in batch)


class MixedClips(torch.utils.data.Dataset):
    """Clips of several datasets (LVISCap images with LV-VISCap videos, say), drawn with
    sampling ratios. Items are ``(dataset, window, draw)`` triples from :meth:`order`.

    Example:
        >>> a = load_source("synthetic:num_videos=2,num_frames=3,seed=0")
        >>> ids = [c["id"] for c in a.gt["categories"]]
        >>> kw = dict(clip_len=2, short_edge=32, category_ids=ids, tokenize=lambda s: [1])
        >>> mixed = MixedClips([ClipDataset(source=a, **kw), ClipDataset(source=a, **kw)], [3, 1])
        >>> order = mixed.order(1000, seed=0)
        >>> sum(d == 0 for d, _, _ in order)  # about three in four from the first
        758
    """

    def __init__(self, datasets: list[ClipDataset] | list[VideoClips], ratios: list[float]) -> None:
        if len(datasets) != len(ratios) or not all(r > 0 for r in ratios):
            raise InputError(f"one positive sampling ratio per dataset is needed, got {ratios} "
                             f"for {len(datasets)} datasets", field="ratios")
        self.datasets, self.ratios = datasets, ratios

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)

    def __getitem__(self, item: tuple[int, int, int]) -> Any:
        which, window, draw = item
        return self.datasets[which][(window, draw)]

    def order(self, n: int, *, seed: int) -> list[tuple[int, int, int]]:
        """The run's ``n`` draws, fixed by ``seed``: a resumed run slices the same list. One
        dataset draws its windows as ``torch.randint`` did before mixtures existed."""
        generator = torch.Generator().manual_seed(seed)
        if len(self.datasets) == 1:
            which = torch.zeros(n, dtype=torch.long)
            window = torch.randint(len(self.datasets[0]), (n,), generator=generator)
        else:
            which = torch.multinomial(torch.tensor(self.ratios, dtype=torch.float64), n,
                                      replacement=True, generator=generator)
            sizes = torch.tensor([len(d) for d in self.datasets])
            window = (torch.rand(n, generator=generator, dtype=torch.float64)
                      * sizes[which]).long()
        draws = np.random.default_rng(seed).integers(2**62, size=n).tolist()
        return list(zip(which.tolist(), window.tolist(), draws))
