"""Prediction heads on the object queries: class, objectness, boxes and the per-clip score.

Example:
    >>> import torch
    >>> clip_score(torch.tensor([[0.0, 2.0]]), torch.tensor([[3.0, 3.0]])).tolist()  # doctest: +ELLIPSIS
    [0.6...]
"""

from __future__ import annotations

import torch
from torch import nn

from reference_model.video_decoder import MLP, sine_embedding


class ClassHead(nn.Module):
    """Per-class logits scored with a sigmoid.

    Linear by default; with ``class_embeddings`` (C, E) (e.g. CLIP text embeddings of the
    class names, as OVFormer) the logit is a scaled cosine between the projected query and
    each frozen class embedding, so that new class names need no retraining.
    """

    def __init__(self, *, hidden_dim: int, num_classes: int,
                 class_embeddings: torch.Tensor | None = None) -> None:
        super().__init__()
        if class_embeddings is None:
            self.proj = nn.Linear(hidden_dim, num_classes)
            self.register_buffer("class_embeddings", None)
        else:
            self.proj = nn.Linear(hidden_dim, class_embeddings.shape[1])
            self.register_buffer("class_embeddings", nn.functional.normalize(class_embeddings.float(), dim=-1))
            self.logit_scale = nn.Parameter(torch.tensor(10.0))
            self.logit_bias = nn.Parameter(torch.tensor(-5.0))

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        if self.class_embeddings is None:
            return self.proj(queries)
        emb = nn.functional.normalize(self.proj(queries), dim=-1)
        return emb @ self.class_embeddings.T * self.logit_scale + self.logit_bias


class BoxHead(nn.Module):
    """Per-frame boxes from the clip query: an MLP on (query + sine(frame time)).

    Adding the frame's time embedding lets one clip-level query regress a different box per
    frame and works for any clip length T. Output: normalised (cx, cy, w, h) in [0, 1].

    With ``mask_anchor`` (our addition, see README) the head regresses a correction to the
    box implied by the query's predicted mask of that frame: the mask's centroid and
    sqrt(12) x its standard deviation along x and y (exactly the box of a filled rectangle).
    The mask is detached, so box losses never move the masks.
    """

    def __init__(self, *, hidden_dim: int, num_layers: int, mask_anchor: bool = False) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.mlp = MLP(hidden_dim, hidden_dim, 4, num_layers)
        self.anchor_proj = nn.Linear(4, hidden_dim) if mask_anchor else None

    def forward(self, queries: torch.Tensor, num_frames: int,
                mask_logits: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, D) queries (and (B, N, T, h, w) mask logits) -> (B, N, T, 4)."""
        times = (torch.arange(num_frames, device=queries.device, dtype=torch.float32) + 0.5) / num_frames
        per_frame = queries[:, :, None, :] + sine_embedding(times, self.hidden_dim).to(queries.dtype)
        if self.anchor_proj is None or mask_logits is None:
            return self.mlp(per_frame).sigmoid()
        anchor = mask_box(mask_logits.detach()).clamp(1e-4, 1 - 1e-4)
        delta = self.mlp(per_frame + self.anchor_proj(anchor.to(per_frame.dtype)))
        return (torch.logit(anchor) + delta).sigmoid()


def mask_box(mask_logits: torch.Tensor) -> torch.Tensor:
    """Soft box (cx, cy, w, h), normalised, from mask moments; (..., h, w) -> (..., 4).

    Example:
        >>> m = torch.full((4, 4), -30.0); m[1:3, 0:2] = 30.0
        >>> [round(v, 3) for v in mask_box(m).tolist()]
        [0.25, 0.5, 0.5, 0.5]
    """
    h, w = mask_logits.shape[-2:]
    weights = mask_logits.float().sigmoid()
    total = weights.sum((-2, -1)).clamp(min=1e-6)
    ys = (torch.arange(h, device=weights.device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=weights.device, dtype=torch.float32) + 0.5) / w
    wy, wx = weights.sum(-1) / total[..., None], weights.sum(-2) / total[..., None]
    cy, cx = (wy * ys).sum(-1), (wx * xs).sum(-1)
    # A filled rectangle of width W has variance (W^2 - pixel^2) / 12 in pixel centres.
    sy = ((wy * (ys - cy[..., None]) ** 2).sum(-1) * 12 + 1 / h ** 2).sqrt()
    sx = ((wx * (xs - cx[..., None]) ** 2).sum(-1) * 12 + 1 / w ** 2).sqrt()
    return torch.stack([cx, cy, sx, sy], dim=-1)


def clip_score(class_logits: torch.Tensor, objectness_logits: torch.Tensor) -> torch.Tensor:
    """Per-clip score S = sqrt(max_c sigmoid(cls_c) * p_obj); objectness index 0 = object.

    ``class_logits`` (..., C), ``objectness_logits`` (..., 2) -> (...).
    """
    s_cls = class_logits.sigmoid().amax(dim=-1)
    p_obj = objectness_logits.softmax(dim=-1)[..., 0]
    return (s_cls * p_obj).sqrt()
