"""The official CaptionFormer video post-processing: tracked per-clip predictions -> the
per-track video result, its ``results.json`` form, and the benchmark's per-track records.

Inputs are the detector's outputs after tracking: clip i's predictions gathered with the
tracker's ``indices`` (track j = query ``indices[j]``, see
:class:`reference_model.tracker.VoteTracker`), class and objectness logits stacked per clip
and boxes or masks concatenated along time (Q tracks, T frames, clips of ``clip_len`` frames,
the last one possibly shorter): ``torch.stack([logits_i[indices_i] for ...])`` and
``torch.cat([boxes_i[indices_i] for ...], dim=1)``. The per-clip score of a track is S = sqrt(max_c
sigmoid(cls_c) * objectness) with the last ("no class") column dropped.

* Boxes (``inference_video_dvoc``): a track keeps its boxes in the clips where S >
  ``presence_threshold`` and is output if any clip passes; its score is max_c sigmoid(mean over
  clips of the class logits) (no objectness), its label the argmax. Boxes are the raw
  ``(x, y, w, h)`` fractions of the padded frame, rescaled to the unpadded frame, clamped to
  [0, 1], scaled to the original size and rounded to int.
* Masks (``inference_video_dvoc_mask``): the score is sqrt(max_c sigmoid(mean cls) * mean
  objectness); the ``top_k`` tracks are taken in the order of ``torch.topk(sorted=False)``;
  masks are upsampled to the padded size, cropped to the unpadded size, resized to the
  original size and thresholded at 0.

Both modes then give each frame its clip's S, run the optional bidirectional hysteresis on
these per-frame scores (boxes: inactive frames become null; both: a track with no active frame
is dropped) and the per-frame score threshold (boxes: frames with a score <= threshold become
null; masks: tracks with a score <= threshold are dropped). Order and thresholds follow the
official code, including its quirks (see :func:`hysteresis_active`).

Example:
    >>> cls = torch.tensor([[[2.0, -1.0, 0.0]], [[1.0, 0.0, 0.0]]])   # 2 clips, 1 track, 2 classes
    >>> obj = torch.tensor([[[3.0, 0.0]], [[-3.0, 0.0]]])
    >>> boxes = torch.tensor([[[0.1, 0.2, 0.5, 0.5], [0.1, 0.2, 0.5, 0.5]]])  # (Q, T, 4)
    >>> r = postprocess(class_logits=cls, object_logits=obj, geometry=boxes, caption_ids=[[2, 7]],
    ...                 padded_size=(100, 100), image_size=(100, 80), output_size=(50, 40),
    ...                 mode="box", clip_len=1)
    >>> r.labels, r.boxes, r.caption_ids
    ([0], [[[5, 10, 25, 25], None]], [[2, 7]])
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch.nn import functional as F

from reference_model.heads import clip_score

MODES = ("box", "mask")


@dataclass(frozen=True)
class Hysteresis:
    """Bidirectional hysteresis on per-frame scores: on at >= ``high``, off below ``low``;
    active runs shorter than ``min_duration`` frames are dropped."""

    low: float
    high: float
    min_duration: int


@dataclass
class VideoResult:
    """The official model's return value for one video, one entry per output track.

    ``boxes[n][t]`` is ``[x, y, w, h]`` in original-frame pixels or None (box mode);
    ``masks`` (N, T, H, W) bool (mask mode). ``caption_ids`` are the raw generated token ids
    (empty for a track that got no caption). ``tracks[n]`` is the tracker slot (the query of
    the first clip) that output track n comes from.
    """

    image_size: tuple[int, int]
    scores: list[float]
    labels: list[int]
    scores_per_frame: list[list[float]]
    caption_ids: list[list[int]]
    boxes: list[list[list[int] | None]] | None = None
    masks: torch.Tensor | None = None
    tracks: list[int] | None = None

    def select(self, keep: Sequence[bool]) -> VideoResult:
        """The tracks where ``keep`` is true, in order."""
        idx = [i for i, k in enumerate(keep) if k]
        return replace(
            self, scores=[self.scores[i] for i in idx], labels=[self.labels[i] for i in idx],
            scores_per_frame=[self.scores_per_frame[i] for i in idx],
            caption_ids=[self.caption_ids[i] for i in idx],
            boxes=None if self.boxes is None else [self.boxes[i] for i in idx],
            masks=None if self.masks is None else self.masks[idx],
            tracks=None if self.tracks is None else [self.tracks[i] for i in idx])

    def to_json(self) -> str:
        """The official ``results.json`` text: ``image_size``, ``pred_scores``,
        ``pred_labels``, ``pred_scores_per_frame``, ``pred_caption_ids``, then ``pred_boxes``
        (null for dropped frames) or ``pred_masks_rle`` (per track, per frame compressed RLE)."""
        out: dict[str, Any] = {
            "image_size": list(self.image_size), "pred_scores": self.scores, "pred_labels": self.labels,
            "pred_scores_per_frame": self.scores_per_frame, "pred_caption_ids": self.caption_ids,
        }
        if self.boxes is not None:
            out["pred_boxes"] = self.boxes
        else:
            out["pred_masks_rle"] = [encode_masks(m) for m in self.masks]
        return json.dumps(out)


def encode_masks(masks: torch.Tensor) -> list[dict]:
    """Compressed RLE (JSON form: ``{"size": [h, w], "counts": str}``) of each (H, W) mask of
    a (T, H, W) bool tensor.

    Example:
        >>> encode_masks(torch.tensor([[[True, False], [False, False]]]))
        [{'size': [2, 2], 'counts': '013'}]
    """
    stacked = np.asfortranarray(masks.permute(1, 2, 0).numpy().astype(np.uint8))
    return [{"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}
            for rle in mask_utils.encode(stacked)]


def clip_scores(class_logits: torch.Tensor, object_logits: torch.Tensor) -> torch.Tensor:
    """Per-clip score S = sqrt(max_c sigmoid(cls_c) * softmax(obj)[0]) of official logits
    (..., C + 1) and (..., 2); the last class column ("no class") is ignored.

    Example:
        >>> clip_scores(torch.tensor([[0.0, 9.0]]), torch.tensor([[0.0, 0.0]])).tolist()
        [0.5]
    """
    return clip_score(class_logits[..., :-1], object_logits)


def captioned_tracks(scores: torch.Tensor, *, threshold: float) -> torch.Tensor:
    """Tracks that get a caption: max over clips of S >= ``threshold``; ``scores`` (Q, nclips).

    Example:
        >>> captioned_tracks(torch.tensor([[0.1, 0.4], [0.2, 0.1]]), threshold=0.3).tolist()
        [0]
    """
    return (scores.max(dim=1).values >= threshold).nonzero().flatten()


def caption_clips(scores: torch.Tensor, *, num_t: int | None) -> torch.Tensor:
    """Clips a track's caption is generated from, given its S per clip (nclips,).

    ``num_t=None``: the clip with the highest S (LV-VIS). Otherwise (temporal aggregation)
    ``num_t`` clips spaced by ``linspace(0, nclips - 1, num_t)`` truncated, so short videos
    repeat clips; the caption head weighs them by their S.

    Example:
        >>> caption_clips(torch.tensor([0.2, 0.9, 0.5]), num_t=None).tolist()
        [1]
        >>> caption_clips(torch.tensor([0.2, 0.9, 0.5]), num_t=4).tolist()
        [0, 0, 1, 2]
    """
    if num_t is None:
        return scores.max(dim=0).indices.reshape(1)
    return torch.linspace(0, len(scores) - 1, steps=num_t).long()


def hysteresis_active(scores: torch.Tensor, *, low: float, high: float, min_duration: int) -> torch.Tensor:
    """Active frames (N, T) bool of per-frame scores (N, T).

    A forward and a backward pass each switch on at a score >= ``high`` and off below ``low``;
    a frame is active if either pass is on. Runs shorter than ``min_duration`` are then
    dropped, except a run that reaches the last frame (the official loop only checks a run
    when it ends on an inactive frame). Comparisons are made in float32, as the official code.

    Example:
        >>> s = torch.tensor([[0.5, 0.9, 0.5, 0.1, 0.95, 0.1, 0.9]])
        >>> hysteresis_active(s, low=0.4, high=0.85, min_duration=2).int().tolist()
        [[1, 1, 1, 0, 0, 0, 1]]
    """
    scores = scores.float()
    on_high, off_low = scores >= high, scores < low
    active = torch.zeros_like(scores, dtype=torch.bool)
    for frames in (range(scores.shape[1]), range(scores.shape[1] - 1, -1, -1)):
        on = torch.zeros(scores.shape[0], dtype=torch.bool)
        for t in frames:
            on = on_high[:, t] | (on & ~off_low[:, t])
            active[:, t] |= on
    for row in active:
        run = 0
        for t, a in enumerate(row.tolist()):
            if a:
                run += 1
                continue
            if run < min_duration:
                row[t - run:t] = False
            run = 0
    return active


def _frame_clips(num_frames: int, clip_len: int) -> torch.Tensor:
    return torch.arange(num_frames) // clip_len


def _box_result(class_logits: torch.Tensor, scores: torch.Tensor, boxes: torch.Tensor,
                caption_ids: list[list[int]], *, padded_size: tuple[int, int], image_size: tuple[int, int],
                output_size: tuple[int, int], clip_len: int, presence_threshold: float) -> VideoResult:
    (pad_h, pad_w), (h, w), (out_h, out_w) = padded_size, image_size, output_size
    # Fractions of the padded frame -> of the unpadded frame -> original pixels; the float32
    # multiplications are the official ones (a Python scalar multiplies in float32).
    scale = torch.tensor([pad_w / w, pad_h / h, pad_w / w, pad_h / h], dtype=torch.float32, device=boxes.device)
    size = torch.tensor([out_w, out_h, out_w, out_h], dtype=torch.float32, device=boxes.device)
    boxes = ((boxes.float() * scale).clamp(0, 1) * size).round().int()
    present = scores > presence_threshold                      # (nclips, Q)
    frame_clip = _frame_clips(boxes.shape[1], clip_len)
    track_scores, labels = class_logits[:, :, :-1].mean(dim=0).sigmoid().max(dim=-1)
    kept = present.any(dim=0).nonzero().flatten().tolist()
    present_frames = present[frame_clip].T.tolist()            # (Q, T)
    return VideoResult(
        image_size=(out_h, out_w), scores=track_scores[kept].tolist(), labels=labels[kept].tolist(),
        scores_per_frame=scores[frame_clip][:, kept].T.tolist(),
        caption_ids=[caption_ids[q] for q in kept],
        boxes=[[box if p else None for box, p in zip(boxes[q].tolist(), present_frames[q])] for q in kept],
        tracks=kept)


def _mask_result(class_logits: torch.Tensor, object_logits: torch.Tensor, scores: torch.Tensor,
                 masks: torch.Tensor, caption_ids: list[list[int]], *, padded_size: tuple[int, int],
                 image_size: tuple[int, int], output_size: tuple[int, int], clip_len: int,
                 top_k: int) -> VideoResult:
    objectness = object_logits.softmax(dim=-1)[:, :, 0].mean(dim=0)
    track_cls, labels = class_logits[:, :, :-1].mean(dim=0).sigmoid().max(dim=-1)
    track_scores, top = (track_cls * objectness).sqrt().topk(top_k, sorted=False)
    # One track at a time: each (frame) plane is resized on its own, so this equals the
    # official all-tracks interpolation without holding Q x T padded-size planes.
    out = [(output_mask_logits(masks[q], padded_size=padded_size, image_size=image_size,
                               output_size=output_size) > 0).cpu() for q in top.tolist()]
    frame_clip = _frame_clips(masks.shape[1], clip_len)
    return VideoResult(
        image_size=tuple(output_size), scores=track_scores.tolist(), labels=labels[top].tolist(),
        scores_per_frame=scores[frame_clip][:, top].T.tolist(),
        caption_ids=[caption_ids[q] for q in top.tolist()],
        masks=torch.stack(out), tracks=top.tolist())


def output_mask_logits(masks: torch.Tensor, *, padded_size: tuple[int, int], image_size: tuple[int, int],
                       output_size: tuple[int, int]) -> torch.Tensor:
    """One track's (T, h, w) decoder mask logits -> (T, H, W) logits on the original frames:
    bilinear (align_corners=False) to the padded input, cropped to the resized frame, bilinear
    to the original size. A pixel is in the mask where the logit is > 0.

    Example:
        >>> output_mask_logits(torch.ones(1, 2, 2), padded_size=(8, 8), image_size=(4, 8),
        ...                    output_size=(2, 4)).shape
        torch.Size([1, 2, 4])
    """
    m = F.interpolate(masks[None].float(), size=padded_size, mode="bilinear", align_corners=False)
    m = m[:, :, :image_size[0], :image_size[1]]
    return F.interpolate(m, size=output_size, mode="bilinear", align_corners=False)[0]


def postprocess(*, class_logits: torch.Tensor, object_logits: torch.Tensor, geometry: torch.Tensor,
                caption_ids: Sequence[Sequence[int] | None], padded_size: tuple[int, int],
                image_size: tuple[int, int], output_size: tuple[int, int], mode: str, clip_len: int,
                presence_threshold: float = 0.2, top_k: int = 50, hysteresis: Hysteresis | None = None,
                per_frame_score_threshold: float = 0.0) -> VideoResult:
    """The official per-track result of one video from its tracked predictions.

    ``class_logits`` (nclips, Q, C + 1) and ``object_logits`` (nclips, Q, 2): per clip, in
    track order. ``geometry``: boxes (Q, T, 4) raw ``(x, y, w, h)`` fractions of the padded
    frame (``mode="box"``) or mask logits (Q, T, h, w) at the decoder's resolution
    (``mode="mask"``), concatenated over clips. ``caption_ids``: per track, the generated ids
    or None. Sizes are (height, width): ``padded_size`` the model's input, ``image_size`` the
    resized frame before padding, ``output_size`` the original video.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    captions = [list(ids) if ids is not None else [] for ids in caption_ids]
    scores = clip_scores(class_logits, object_logits)            # (nclips, Q)
    sizes = dict(padded_size=tuple(padded_size), image_size=tuple(image_size),
                 output_size=tuple(output_size), clip_len=clip_len)
    if mode == "box":
        result = _box_result(class_logits, scores, geometry, captions,
                             presence_threshold=presence_threshold, **sizes)
    else:
        result = _mask_result(class_logits, object_logits, scores, geometry, captions, top_k=top_k, **sizes)
    if hysteresis is not None and result.scores:
        active = hysteresis_active(torch.tensor(result.scores_per_frame), low=hysteresis.low,
                                   high=hysteresis.high, min_duration=hysteresis.min_duration)
        if result.boxes is not None:
            result.boxes = [[box if a else None for box, a in zip(row, act.tolist())]
                            for row, act in zip(result.boxes, active)]
        result = result.select(active.any(dim=1).tolist())
    if per_frame_score_threshold > 0:
        if result.boxes is not None:
            result.boxes = [[box if s > per_frame_score_threshold else None for box, s in zip(row, frame_scores)]
                            for row, frame_scores in zip(result.boxes, result.scores_per_frame)]
        else:
            result = result.select([s > per_frame_score_threshold for s in result.scores])
    return result


def track_records(result: VideoResult, *, video_id: int, category_ids: Sequence[int],
                  captions: Sequence[str]) -> list[dict]:
    """Per-track prediction records of one video (``video_id``, ``score``, ``category_id``,
    ``caption``, ``bboxes`` or ``segmentations`` per frame, null where absent), the input of
    :func:`benchmark.datasets.predictions.convert_predictions`, which turns the records of all
    videos into the scorer's per-frame records. ``category_ids[label]`` maps the model's class
    index to the dataset's category id; ``captions`` are the decoded captions, one per track.

    Example:
        >>> r = VideoResult(image_size=(2, 2), scores=[0.9], labels=[1], scores_per_frame=[[0.9]],
        ...                 caption_ids=[[2, 5]], boxes=[[[0, 0, 1, 1]]])
        >>> track_records(r, video_id=3, category_ids=[10, 11], captions=["a cat"])
        [{'video_id': 3, 'score': 0.9, 'category_id': 11, 'caption': 'a cat', 'bboxes': [[0, 0, 1, 1]]}]
    """
    if len(captions) != len(result.scores):
        raise ValueError(f"{len(captions)} captions for {len(result.scores)} tracks")
    records = []
    for n, (score, label, caption) in enumerate(zip(result.scores, result.labels, captions)):
        record = {"video_id": int(video_id), "score": float(score), "category_id": int(category_ids[label]),
                  "caption": caption}
        if result.boxes is not None:
            record["bboxes"] = result.boxes[n]
        else:
            record["segmentations"] = encode_masks(result.masks[n])
        records.append(record)
    return records
