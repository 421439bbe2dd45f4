"""Inference of the released CaptionFormer / MaskCaptioner checkpoints, as the official code
runs it (GitHub gabfstr/CaptionFormer, ``VideoCaptionFormer.forward`` in eval mode).

A video is resized (short edge ``short_edge``, long edge at most ``max_size``, PIL bilinear),
normalised on the 0-255 scale and zero-padded to a multiple of 32, then cut into consecutive
clips of ``clip_len_infer`` frames (the last one shorter, never padded). Each clip runs the
detector; the tracker links the clips' queries into tracks; tracks whose best clip score
reaches ``caption_threshold`` get one caption (score-weighted over ``t_agg`` clips, or from
the best clip); post-processing keeps, scores and resizes the tracks
(``reference_model.postprocess``).

Frames are read one clip at a time: box models hold a few numbers per query and frame, so
memory stays flat on hour-long videos; mask models hold each clip's stride-4 mask logits
until the end, as the official code does (top-50 tracks are chosen on the whole video).

Example:
    >>> resized_size(80, 112, short_edge=96, max_size=1333)
    (96, 134)
    >>> resized_size(100, 4000, short_edge=480, max_size=1333)
    (33, 1333)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from benchmark.errors import InputError
from reference_model.data import VideoSource
from reference_model.model import MaskCaptioner
from reference_model.postprocess import Hysteresis, VideoResult, clip_scores, postprocess, track_records
from reference_model.tracker import VoteTracker

# detectron2 / Mask2Former pixel statistics (RGB, 0-255 scale).
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
SIZE_DIVISIBILITY = 32


def resized_size(height: int, width: int, *, short_edge: int, max_size: int) -> tuple[int, int]:
    """detectron2's ``ResizeShortestEdge`` at test time: (new height, new width)."""
    scale = short_edge / min(height, width)
    h, w = (short_edge, scale * width) if height < width else (scale * height, short_edge)
    if max(h, w) > max_size:
        shrink = max_size / max(h, w)
        h, w = h * shrink, w * shrink
    return int(h + 0.5), int(w + 0.5)


def preprocess(frames: np.ndarray, *, short_edge: int, max_size: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(T, H, W, 3) uint8 RGB -> ((T, 3, Hp, Wp) normalised frames zero-padded to /32, the
    size before padding). PIL's bilinear filter on uint8, as detectron2 resizes."""
    from PIL import Image

    h, w = resized_size(frames.shape[1], frames.shape[2], short_edge=short_edge, max_size=max_size)
    if (h, w) != frames.shape[1:3]:
        frames = np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BILINEAR)) for f in frames])
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = (x - torch.tensor(PIXEL_MEAN).view(3, 1, 1)) / torch.tensor(PIXEL_STD).view(3, 1, 1)
    hp = -(-h // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY
    wp = -(-w // SIZE_DIVISIBILITY) * SIZE_DIVISIBILITY
    # Padding after normalisation: padded pixels are 0, not the mean colour.
    return F.pad(x, (0, wp - w, 0, hp - h)), (h, w)


def normalise_clips(clips: torch.Tensor, pixel_valid: torch.Tensor) -> torch.Tensor:
    """Training clips (B, T, 3, H, W) in [0, 1], zero-padded, -> the official models' input:
    normalised on the 0-255 scale, padding 0 after normalisation as :func:`preprocess`;
    ``pixel_valid`` (B, H, W) marks each clip's own pixels.

    Example:
        >>> x = normalise_clips(torch.ones(1, 1, 3, 2, 2), torch.tensor([[[True, False], [True, False]]]))
        >>> [round(v, 3) for v in x[0, 0, 0, 0].tolist()]
        [2.249, 0.0]
    """
    mean = torch.tensor(PIXEL_MEAN, device=clips.device).view(3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=clips.device).view(3, 1, 1)
    return (clips * 255 - mean) / std * pixel_valid[:, None, None].to(clips.dtype)


def clip_ranges(num_frames: int, clip_len: int) -> list[tuple[int, int]]:
    """[start, end) of each clip; the last clip is shorter when clip_len does not divide."""
    return [(i * clip_len, min((i + 1) * clip_len, num_frames)) for i in range(math.ceil(num_frames / clip_len))]


@dataclass
class ClipResult:
    """The detector's last-layer outputs for one clip (batch dimension removed)."""

    class_logits: torch.Tensor  # (Q, C + 1)
    object_logits: torch.Tensor  # (Q, 2)
    geometry: torch.Tensor  # (Q, Tc, 4) boxes or (Q, Tc, h, w) mask logits
    embeds: torch.Tensor  # (Q, D) normalised queries (tracking, captioning)


@dataclass
class Trace:
    """Intermediates recorded for golden checks (``golden.py``); empty unless asked for."""

    stage_clips: set[int] = field(default_factory=set)  # clips whose backbone/pixel-decoder outputs to keep
    values: dict[str, Any] = field(default_factory=dict)


def detect(model: MaskCaptioner, images: torch.Tensor, clip_features: torch.Tensor | None, *,
           index: int, trace: Trace | None) -> ClipResult:
    """Run the detector on one clip of preprocessed frames (Tc, 3, Hp, Wp)."""
    out = model(images[None], clip_features)
    last = out.layers[-1]
    if trace is not None:
        entry = {
            "per_layer": [{"pred_logits": p.class_logits, "pred_object_logits": p.objectness,
                           "pred_boxes": p.boxes, "pred_masks": p.masks} for p in out.layers],
            "pred_queries": out.raw_queries, "pred_embds": out.queries,
        }
        if index in trace.stage_clips:
            entry.update(backbone=out.features, pixel_decoder_multi_scale=[x[0] for x in out.levels],
                         pixel_decoder_mask_features=None if out.mask_features is None else out.mask_features[0])
        trace.values.setdefault("clips", {})[index] = entry
    geometry = last.masks if model.cfg.mode == "mask" else last.boxes
    return ClipResult(class_logits=last.class_logits[0], object_logits=last.objectness[0],
                      geometry=geometry[0], embeds=out.queries[0])


FrameReader = Callable[[list[int]], np.ndarray]


class _PreprocessedFrames:
    """``frames[i]``: frame i read, preprocessed and moved to ``device`` on demand (the
    caption head reads a few frames of the video, after tracking)."""

    def __init__(self, read: FrameReader, *, short_edge: int, max_size: int, device: torch.device) -> None:
        self.read, self.short_edge, self.max_size, self.device = read, short_edge, max_size, device

    def __getitem__(self, index: int) -> torch.Tensor:
        images, _ = preprocess(self.read([index]), short_edge=self.short_edge, max_size=self.max_size)
        return images[0].to(self.device)


def caption_video(model: MaskCaptioner, read: FrameReader, *, ranges: list[tuple[int, int]],
                  embeds: list[torch.Tensor], geometry: list[torch.Tensor], scores: torch.Tensor,
                  trace: Trace | None = None) -> list[list[int] | None]:
    """Caption token ids per track (None for tracks below the caption threshold).

    ``embeds`` and ``geometry``: per clip, the tracks' object queries (Q, D) and boxes or mask
    logits, in track order; ``scores`` (Q, nclips) the per-clip scores S.
    """
    cfg = model.cfg
    device = next(model.parameters()).device
    frames = _PreprocessedFrames(read, short_edge=cfg.short_edge, max_size=cfg.max_size, device=device)
    records = [] if trace is not None else None
    ids = model.caption_head.caption_tracks(
        frames, frame_ranges=ranges, embeddings=embeds, regions=[g.to(device) for g in geometry],
        scores=scores.to(device), trace=records)
    captions = [None if t is None else t.tolist() for t in ids]
    if trace is not None:
        trace.values.update(caption_traces=records, caption_ids=captions)
    return captions


@torch.no_grad()
def run_video(model: MaskCaptioner, read: FrameReader, *, num_frames: int,
              clip_features: torch.Tensor | None = None, trace: Trace | None = None,
              progress: bool = False, autocast: bool = True) -> VideoResult:
    """The official per-track result of one video.

    ``read(positions)`` returns those frames as (n, H, W, 3) uint8 RGB; ``clip_features``
    (num_frames, 512) are the per-frame CLIP image features the zero-shot class head reads
    (the official ``CLIP_IMAGE_PATH`` files). Frames are read clip by clip, and again for the
    clips a caption reads, so the video is never held whole. With ``trace``, every
    intermediate the golden bundles hold is recorded (``golden.py`` compares them).
    ``autocast=False`` keeps a CUDA run in float32 (the golden check's CPU-vs-GPU agreement).
    """
    device = next(model.parameters()).device
    # The official evaluation runs under fp16 autocast on GPUs; CPU runs stay in float32.
    with torch.autocast("cuda", dtype=torch.float16, enabled=autocast and device.type == "cuda"):
        return _run_video(model, read, num_frames=num_frames, clip_features=clip_features, trace=trace,
                          progress=progress, device=device)


def _run_video(model: MaskCaptioner, read: FrameReader, *, num_frames: int, clip_features: torch.Tensor | None,
               trace: Trace | None, progress: bool, device: torch.device) -> VideoResult:
    cfg = model.cfg
    ranges = clip_ranges(num_frames, cfg.clip_len_infer)
    tracker = VoteTracker(memory_len=1 if cfg.tracker == "hungarian" else cfg.t_match,
                          top_k=1 if cfg.tracker == "hungarian" else cfg.k_match)
    class_logits, object_logits, geometry, embeds, permutations = [], [], [], [], []
    height = width = None
    image_size = padded_size = None
    for index, (start, end) in enumerate(tqdm(ranges, desc="clips", unit="clip", disable=not progress)):
        frames = read(list(range(start, end)))
        height, width = frames.shape[1:3]
        images, image_size = preprocess(frames, short_edge=cfg.short_edge, max_size=cfg.max_size)
        padded_size = tuple(images.shape[-2:])
        if trace is not None:
            trace.values.setdefault("images_tensor", []).append(images)
        features = None if clip_features is None else clip_features[start:end].to(device)
        clip = detect(model, images.to(device), features, index=index, trace=trace)
        indices = tracker.step(clip.embeds.float().cpu()).to(device)
        permutations.append(indices.cpu())
        class_logits.append(clip.class_logits[indices].float().cpu())
        object_logits.append(clip.object_logits[indices].float().cpu())
        geometry.append(clip.geometry[indices].float().cpu())
        embeds.append(clip.embeds[indices])
    class_logits = torch.stack(class_logits)
    object_logits = torch.stack(object_logits)
    scores = clip_scores(class_logits, object_logits).T  # (Q, nclips)
    caption_ids = caption_video(model, read, ranges=ranges, embeds=embeds, geometry=geometry, scores=scores,
                                trace=trace)
    result = postprocess(
        class_logits=class_logits, object_logits=object_logits, geometry=torch.cat(geometry, dim=1),
        caption_ids=caption_ids, padded_size=padded_size, image_size=image_size, output_size=(height, width),
        mode=cfg.mode, clip_len=cfg.clip_len_infer, presence_threshold=cfg.presence_threshold,
        top_k=cfg.top_k_tracks, hysteresis=None if cfg.hysteresis is None else Hysteresis(*cfg.hysteresis),
        per_frame_score_threshold=cfg.per_frame_score_threshold)
    if trace is not None:
        trace.values.update(images_tensor=torch.cat(trace.values["images_tensor"]), image_size=image_size,
                            track_permutations=torch.stack(permutations), clip_scores_S=scores,
                            result=result)
    return result


def predict_dataset(model: MaskCaptioner, source: VideoSource, *, decode: Callable[[list[int]], str],
                    clip_features: Callable[[int], torch.Tensor] | None = None, seed: int = 1234,
                    progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Run every video of ``source``; returns (the benchmark's per-frame prediction records,
    the official per-video results as dicts with ``video_id``).

    ``decode`` turns caption token ids into text (the OPT tokenizer: skip special tokens,
    strip); ``clip_features(video_id)`` gives a video's (T, 512) CLIP image features for
    zero-shot configurations. The global RNG is seeded with ``seed`` before each video, as the
    golden runs seed it before the forward pass, so a video's captions do not depend on the
    videos before it.
    """
    from benchmark.datasets.predictions import convert_predictions

    if model.cfg.class_head == "zero_shot" and clip_features is None:
        raise InputError(f"config {model.cfg.name!r} classifies with CLIP image features: give --clip-features",
                         source=source.name)
    num_classes = model.cfg.num_classes
    categories = sorted(int(c["id"]) for c in source.gt["categories"])
    # Class index i is the dataset's i-th category when the ground truth lists them all.
    category_ids = categories if len(categories) == num_classes else list(range(1, num_classes + 1))
    tracks, results = [], []
    for video_id in tqdm(sorted(source.frame_images), desc="videos", unit="video", disable=not progress):
        torch.manual_seed(seed)
        result = run_video(model, lambda positions, v=video_id: source.frame_slice(v, positions),
                           num_frames=len(source.frame_images[video_id]),
                           clip_features=None if clip_features is None else clip_features(video_id))
        captions = [decode(ids) if ids else "" for ids in result.caption_ids]
        tracks.extend(track_records(result, video_id=video_id, category_ids=category_ids, captions=captions))
        results.append({"video_id": video_id, **json.loads(result.to_json())})
    records = convert_predictions(tracks, source.gt, show_progress=False) if tracks else []
    return records, results
