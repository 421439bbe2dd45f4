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


class ZeroShotClassHead(nn.Module):
    """The official open-vocabulary classifier (OVFormer's, used by the LV-VIS and VidSTG
    checkpoints): queries are projected to CLIP's 512-d space, cross-attend to the clip's
    per-frame CLIP image features, and are scored by ``temperature`` x cosine against the
    class-name text embeddings. The last of the C + 1 columns ("no class") is all zeros.

    ``class_embeddings`` (C, E): the released text embeddings (``fg_bg_5_10_*_ens.npy``);
    a converted checkpoint carries them already normalised, so they are a buffer.

    Example:
        >>> head = ZeroShotClassHead(hidden_dim=8, class_embeddings=torch.eye(4)[:3], num_heads=2)
        >>> head(torch.zeros(1, 5, 8), torch.zeros(2, 4)).shape
        torch.Size([1, 5, 4])
    """

    def __init__(self, *, hidden_dim: int, class_embeddings: torch.Tensor, num_heads: int = 8,
                 temperature: float = 50.0) -> None:
        super().__init__()
        dim = class_embeddings.shape[1]
        self.proj = nn.Sequential(nn.Linear(hidden_dim, dim // 2), nn.ReLU(), nn.Linear(dim // 2, dim))
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.temperature = temperature
        self.register_buffer("weight", self._weight(class_embeddings))

    @staticmethod
    def _weight(class_embeddings: torch.Tensor) -> torch.Tensor:
        """(E, C + 1): the normalised embeddings as columns, then the zero "no class" one."""
        dim = class_embeddings.shape[1]
        return nn.functional.normalize(torch.cat([class_embeddings.float().T, torch.zeros(dim, 1)], dim=1), dim=0)

    def set_class_embeddings(self, class_embeddings: torch.Tensor) -> None:
        """Classify other categories: new (C', E) class-name embeddings replace the buffer."""
        dim = self.weight.shape[0]
        if class_embeddings.dim() != 2 or class_embeddings.shape[1] != dim or len(class_embeddings) == 0:
            raise ValueError(f"class embeddings must be (C, {dim}), got {tuple(class_embeddings.shape)}")
        self.weight = self._weight(class_embeddings).to(self.weight.device)

    def forward(self, queries: torch.Tensor, image_features: torch.Tensor) -> torch.Tensor:
        """(B, N, D) queries and CLIP image features -> (B, N, C + 1) logits. The features
        are the clip's (T, E), shared by the batch (inference), or (B, F, E), each clip's own
        (training reads one frame per clip, as the official training does)."""
        x = self.proj(queries)
        memory = image_features.to(x.dtype)
        if memory.dim() == 2:
            memory = memory[None].expand(x.shape[0], -1, -1)
        x = self.norm(x + self.cross_attn(x, memory, memory)[0])
        x = self.temperature * nn.functional.normalize(x, dim=-1)
        return x @ self.weight


class BoxHead(nn.Module):
    """Per-frame boxes from the clip query: an MLP on (query + sine(frame time)).

    Adding the frame's time embedding lets one clip-level query regress a different box per
    frame and works for any clip length T. Output: normalised (cx, cy, w, h) in [0, 1].

    ``official=True`` is the released checkpoints' head: the same query for every frame (no
    time embedding) and the raw MLP output read as (x_min, y_min, w, h) fractions of the
    padded frame, no sigmoid.

    With ``mask_anchor`` (our addition, see README) the head regresses a correction to the
    box implied by the query's predicted mask of that frame: the mask's centroid and
    sqrt(12) x its standard deviation along x and y (exactly the box of a filled rectangle).
    The mask is detached, so box losses never move the masks.
    """

    def __init__(self, *, hidden_dim: int, num_layers: int, mask_anchor: bool = False,
                 official: bool = False) -> None:
        super().__init__()
        if official and mask_anchor:
            raise ValueError("the official box head has no mask anchor")
        self.hidden_dim = hidden_dim
        self.official = official
        self.mlp = MLP(hidden_dim, hidden_dim, 4, num_layers)
        self.anchor_proj = nn.Linear(4, hidden_dim) if mask_anchor else None

    def forward(self, queries: torch.Tensor, num_frames: int,
                mask_logits: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, D) queries (and (B, N, T, h, w) mask logits) -> (B, N, T, 4)."""
        if self.official:
            return self.mlp(queries[:, :, None, :].expand(-1, -1, num_frames, -1))
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
