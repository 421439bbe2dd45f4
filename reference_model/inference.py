"""Inference: clips -> per-clip predictions -> top-K tracking -> one caption per track ->
the benchmark's per-frame prediction records.

Each video is cut into consecutive clips of ``clip_len_infer`` frames (the last one padded by
repeating its last frame). A track (query slot) is output in the frames of the clips where
its score S exceeds ``score_threshold`` and its mask is not empty; every record of the track
carries the track's single caption, generated from the score-weighted aggregate of up to
``t_agg`` of its clips.

Example:
    $ python -m reference_model predict --checkpoint runs/tiny/checkpoint.pt \\
          --data synthetic:num_videos=16,seed=1 --out preds.json
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from benchmark.errors import InputError
from reference_model.caption_head import aggregation_plan
from reference_model.data import Resize, VideoSource
from reference_model.losses import box_cxcywh_to_xyxy
from reference_model.model import MaskCaptioner
from reference_model.postprocess import encode_masks
from reference_model.tracker import TopKTracker


@torch.no_grad()
def predict_video(model: MaskCaptioner, frames: np.ndarray, *, image_ids: list[int], video_id: int,
                  category_ids: list[int], tokenizer, clip_features: torch.Tensor | None = None) -> list[dict]:
    """Prediction records for one video; ``frames`` (L, H, W, 3) uint8, one image id per frame;
    ``clip_features`` (L, 512) its CLIP image features, for a zero-shot class head (each clip
    reads its frames', as the official inference does)."""
    cfg = model.cfg
    device = next(model.parameters()).device
    length, height, width = frames.shape[:3]
    resize = Resize(height, width, cfg.short_edge)
    rh, rw = resize.resized
    hp, wp = resize.padded
    box_scale = torch.tensor([wp, hp, wp, hp], dtype=torch.float32) / resize.scale
    tracker = TopKTracker(t_match=cfg.t_match, k_match=cfg.k_match)
    t = cfg.clip_len_infer
    records: dict[int, list[dict]] = defaultdict(list)
    clip_encodings: dict[int, list[tuple[float, torch.Tensor]]] = defaultdict(list)
    for start in range(0, length, t):
        idx = [min(start + k, length - 1) for k in range(t)]
        real = min(t, length - start)
        clip = resize.images(frames[idx]).to(device)[None]
        out = model(clip, None if clip_features is None else clip_features[idx].to(device))
        perm = tracker.step(out.queries[0]).to(device)
        scores = out.scores[0, perm]
        keep = (scores > cfg.score_threshold).nonzero().flatten()
        if len(keep) == 0:
            continue
        queries = perm[keep]
        encoded = model.caption_inputs(out, torch.zeros_like(queries), queries)
        masks = F.interpolate(out.layers[-1].masks[0, queries].flatten(0, 1)[:, None].float(), size=(hp, wp),
                              mode="bilinear", align_corners=False)[:, :, :rh, :rw]
        masks = F.interpolate(masks, size=(height, width), mode="bilinear", align_corners=False)
        masks = (masks[:, 0] > 0).view(len(queries), t, height, width).cpu().numpy()
        boxes = (box_cxcywh_to_xyxy(out.layers[-1].boxes[0, queries].float()).cpu() * box_scale)
        labels = out.layers[-1].class_logits[0, queries, :cfg.num_classes].argmax(-1).tolist()
        for j, slot in enumerate(keep.tolist()):
            score = float(scores[slot])
            clip_encodings[slot].append((score, encoded[j]))
            for k in range(real):
                if not masks[j, k].any():
                    continue
                x0, y0, x1, y1 = boxes[j, k].tolist()
                x0, x1 = max(0.0, min(x0, width)), max(0.0, min(x1, width))
                y0, y1 = max(0.0, min(y0, height)), max(0.0, min(y1, height))
                records[slot].append({
                    "image_id": int(image_ids[start + k]), "video_id": int(video_id),
                    "track_id": int(video_id) * 1000 + slot + 1, "category_id": int(category_ids[labels[j]]),
                    "bbox": [x0, y0, x1 - x0, y1 - y0], "segmentation": encode_masks(torch.from_numpy(masks[j, k][None]))[0],
                    "score": score,
                })
    slots = [s for s in records if records[s]]
    if not slots:
        return []
    prefixes = []
    for slot in slots:
        scores = torch.tensor([s for s, _ in clip_encodings[slot]])
        chosen, weights = aggregation_plan(scores, t_agg=cfg.t_agg)
        stacked = torch.stack([clip_encodings[slot][i][1] for i in chosen.tolist()])
        prefixes.append((weights.to(stacked.device, stacked.dtype)[:, None, None] * stacked).sum(0))
    captions = [tokenizer.decode(ids, skip_special_tokens=True).strip()
                for ids in model.caption_head.generate(torch.stack(prefixes))]
    result = []
    for slot, caption in zip(slots, captions):
        for record in records[slot]:
            record["caption"] = caption
            result.append(record)
    return result


def predict(model: MaskCaptioner, source: VideoSource, *, tokenizer, category_ids: list[int],
            clip_features: Callable[[int], torch.Tensor] | None = None, progress: bool = True) -> list[dict]:
    """Prediction records for every video of ``source``, in video order; ``clip_features``
    (video id -> (L, 512)) for a zero-shot class head."""
    if model.cfg.class_head == "zero_shot" and clip_features is None:
        raise InputError("the zero-shot class head needs each video's CLIP image features", source=source.name,
                         field="clip_features")
    model.eval()
    result = []
    for video_id in tqdm(sorted(source.frame_images), desc="predict", disable=not progress):
        images = source.frame_images[video_id]
        result.extend(predict_video(model, source.frames(video_id), image_ids=[im["id"] for im in images],
                                    video_id=video_id, category_ids=category_ids, tokenizer=tokenizer,
                                    clip_features=None if clip_features is None else clip_features(video_id)))
    return result
