"""Video transformer decoder with masked cross-attention (Mask2Former-VIS / OVFormer style).

Each of the ``num_queries`` queries describes one object over the whole clip: it
cross-attends to the T x H x W memory of one feature level at a time (round robin over the
three levels), restricted to where its previous prediction is foreground, and predicts a
mask for all T frames of the clip as a dot product with the per-pixel mask features.

Two details follow the official CaptionFormer decoder when asked to (the released
checkpoints were trained with them): ``position_encoding="sine3d"`` is its 3D sine encoding
(cumulative, 2*pi-normalised coordinates, x/y frequencies over D/2 channels and a time
encoding over all D channels added on top), and box-only models (no mask branch) restrict the
cross-attention to each query's predicted box instead of its mask.

Example:
    >>> import torch
    >>> dec = VideoTransformerDecoder(hidden_dim=32, num_queries=5, num_layers=2, num_heads=4,
    ...                               dim_feedforward=64)
    >>> levels = [torch.zeros(1, 2, 32, s, s) for s in (2, 4, 8)]
    >>> outs = dec(levels, torch.zeros(1, 2, 32, 16, 16))
    >>> len(outs), tuple(outs[-1].masks.shape)
    (3, (1, 5, 2, 16, 16))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


def sine_embedding(positions: torch.Tensor, dim: int, *, temperature: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (any shape) scalar positions in [0, 1] -> (..., dim).

    Example:
        >>> sine_embedding(torch.tensor([0.0]), 4).tolist()
        [[0.0, 0.0, 1.0, 1.0]]
    """
    half = dim // 2
    freqs = temperature ** (-torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    angles = positions.float()[..., None] * (2 * math.pi) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def position_encoding_3d(t: int, h: int, w: int, dim: int, device: torch.device) -> torch.Tensor:
    """(T*H*W, dim) encoding: y and x sines share ``dim``, the time sine is added on top.

    Normalised coordinates make the encoding independent of the feature resolution.
    The ``normalised`` encoding of the ``tiny`` and ``paper`` configurations.
    """
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    ts = (torch.arange(t, device=device, dtype=torch.float32) + 0.5) / max(t, 1)
    pe_y = sine_embedding(ys, dim // 2)[None, :, None, :].expand(t, h, w, dim // 2)
    pe_x = sine_embedding(xs, dim // 2)[None, None, :, :].expand(t, h, w, dim // 2)
    pe_t = sine_embedding(ts, dim)[:, None, None, :]
    return (torch.cat([pe_y, pe_x], dim=-1) + pe_t).reshape(t * h * w, dim)


def sine_position_3d(t: int, h: int, w: int, dim: int, device: torch.device,
                     *, temperature: float = 10000.0) -> torch.Tensor:
    """(T*H*W, dim) 3D sine encoding of the official decoder (``sine3d``), time-major.

    Coordinates are 1-based and scaled so that the last row, column and frame sit at 2*pi.
    y and x each take D/2 channels as interleaved (sin, cos) pairs whose frequencies step
    every two channels; time takes all D channels the same way and is added to both halves.
    The arithmetic (eps of 1e-6, division order) follows the official encoding so that
    released weights see the same inputs to within float rounding.

    Example:
        >>> pe = sine_position_3d(2, 3, 4, 8, torch.device("cpu"))
        >>> tuple(pe.shape), round(float(pe[0, 0]), 4)  # t=0, y=0, x=0: sin(2*pi/3) + sin(pi)
        ((24, 8), 0.866)
    """
    scale = 2 * math.pi
    eps = 1e-6
    half = dim // 2
    z = torch.arange(1, t + 1, dtype=torch.float32, device=device)
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device)
    z, y, x = (v / (v[-1:] + eps) * scale for v in (z, y, x))

    def interleaved(values: torch.Tensor, channels: int) -> torch.Tensor:
        steps = torch.arange(channels, dtype=torch.float32, device=device)
        freqs = temperature ** (2 * torch.div(steps, 2, rounding_mode="floor") / channels)
        angles = values[:, None] / freqs
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=2).flatten(1)

    pe_y = interleaved(y, half)[None, :, None, :].expand(t, h, w, half)
    pe_x = interleaved(x, half)[None, None, :, :].expand(t, h, w, half)
    pe_t = interleaved(z, dim)[:, None, None, :]
    return (torch.cat([pe_y, pe_x], dim=-1) + pe_t).reshape(t * h * w, dim)


POSITION_ENCODINGS = {"normalised": position_encoding_3d, "sine3d": sine_position_3d}


def box_attention_blocked(boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Boolean (B, N, T*h*w) cross-attention mask from boxes, True = may not attend.

    ``boxes`` (B, N, T, 4) are (x_min, y_min, w, h) as fractions of the padded frame. As in
    the official box-only decoder, the corners are truncated to cells of the h x w grid and
    clamped to the last row/column, and a cell is inside when min <= cell < max (so a box
    reaching the last row or column stops one short of it).

    Example:
        >>> box = torch.tensor([[[[0.25, 0.0, 0.5, 0.5]]]])
        >>> box_attention_blocked(box, (2, 4)).int().view(2, 4).tolist()
        [[1, 0, 0, 1], [1, 1, 1, 1]]
    """
    h, w = size
    x0 = (boxes[..., 0] * w).clamp(0, w - 1).long()
    y0 = (boxes[..., 1] * h).clamp(0, h - 1).long()
    x1 = (x0 + boxes[..., 2] * w).clamp(0, w - 1).long()
    y1 = (y0 + boxes[..., 3] * h).clamp(0, h - 1).long()
    ys = torch.arange(h, device=boxes.device)
    xs = torch.arange(w, device=boxes.device)
    in_y = (ys >= y0[..., None]) & (ys < y1[..., None])  # (B, N, T, h)
    in_x = (xs >= x0[..., None]) & (xs < x1[..., None])  # (B, N, T, w)
    inside = in_y[..., :, None] & in_x[..., None, :]
    return (~inside).flatten(2).detach()


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU in between (DETR's prediction MLP)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


@dataclass
class DecoderOutput:
    """Queries and masks (or boxes) after one decoder layer (index 0 = the learned queries)."""

    queries: torch.Tensor  # (B, N, D) after the final LayerNorm
    raw_queries: torch.Tensor  # (B, N, D) residual stream before it
    masks: torch.Tensor | None  # (B, N, T, H/4, W/4) mask logits; None for box-only models
    boxes: torch.Tensor | None = None  # (B, N, T, 4) from the box head of box-only models


class _DecoderLayer(nn.Module):
    """Masked cross-attention, then self-attention, then FFN (post-norm, as Mask2Former)."""

    def __init__(self, dim: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.cross = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.ReLU(), nn.Linear(ffn, dim))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))

    def forward(self, q, q_pos, memory, memory_pos, blocked):
        q = self.norms[0](q + self.cross(q + q_pos, memory + memory_pos, memory, attn_mask=blocked)[0])
        q = self.norms[1](q + self.self_attn(q + q_pos, q + q_pos, q)[0])
        return self.norms[2](q + self.ffn(q))


class VideoTransformerDecoder(nn.Module):
    """Clip-level object queries refined over the three memory levels."""

    def __init__(
        self, *, hidden_dim: int, num_queries: int, num_layers: int, num_heads: int,
        dim_feedforward: int, num_levels: int = 3, position_encoding: str = "normalised",
        mask_branch: bool = True,
    ) -> None:
        super().__init__()
        if position_encoding not in POSITION_ENCODINGS:
            raise ValueError(f"position_encoding must be one of {sorted(POSITION_ENCODINGS)}")
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.position_encoding = POSITION_ENCODINGS[position_encoding]
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_pos = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(num_levels, hidden_dim)
        self.layers = nn.ModuleList(
            _DecoderLayer(hidden_dim, num_heads, dim_feedforward) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(hidden_dim)
        self.mask_embed = MLP(hidden_dim, hidden_dim, hidden_dim, 3) if mask_branch else None

    def _predict(self, raw: torch.Tensor, mask_features: torch.Tensor | None,
                 box_head: nn.Module | None, num_frames: int) -> DecoderOutput:
        queries = self.norm(raw)
        masks = boxes = None
        if self.mask_embed is not None:
            masks = torch.einsum("bnc,btchw->bnthw", self.mask_embed(queries), mask_features)
        else:
            boxes = box_head(queries, num_frames)
        return DecoderOutput(queries=queries, raw_queries=raw, masks=masks, boxes=boxes)

    def _blocked(self, out: DecoderOutput, size: tuple[int, int]) -> torch.Tensor:
        """Boolean (B*heads, N, T*h*w) mask, True = may not attend (background)."""
        if out.masks is None:
            blocked = box_attention_blocked(out.boxes, size)
        else:
            b, n, t = out.masks.shape[:3]
            small = nn.functional.interpolate(out.masks.flatten(0, 2)[:, None], size=size, mode="bilinear",
                                              align_corners=False)
            blocked = (small.sigmoid() < 0.5).view(b, n, -1)
        # A query with no foreground cell attends everywhere instead of to nothing.
        blocked[blocked.all(dim=-1)] = False
        return blocked.detach().repeat_interleave(self.num_heads, dim=0)

    def forward(self, levels: list[torch.Tensor], mask_features: torch.Tensor | None, *,
                box_head: nn.Module | None = None) -> list[DecoderOutput]:
        """``levels``: 3 tensors (B, T, D, h, w), coarse to fine; ``mask_features``:
        (B, T, D, H/4, W/4), or None for a box-only decoder, whose cross-attention then follows
        ``box_head(queries, T)`` (B, N, T, 4). Returns one :class:`DecoderOutput` per layer
        plus the initial one."""
        if (self.mask_embed is None) != (mask_features is None) or (mask_features is None and box_head is None):
            raise ValueError("a mask decoder needs mask_features; a box-only decoder needs box_head")
        b, t = levels[0].shape[:2]
        memories, memory_pos, sizes = [], [], []
        for i, level in enumerate(levels):
            h, w = level.shape[-2:]
            sizes.append((h, w))
            memories.append(level.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, -1) + self.level_embed.weight[i])
            memory_pos.append(self.position_encoding(t, h, w, level.shape[2], level.device)[None])
        q_pos = self.query_pos.weight[None].expand(b, -1, -1)
        raw = self.query_feat.weight[None].expand(b, -1, -1)
        outputs = [self._predict(raw, mask_features, box_head, t)]
        for i, layer in enumerate(self.layers):
            lvl = i % self.num_levels
            blocked = self._blocked(outputs[-1], sizes[lvl])
            raw = layer(raw, q_pos, memories[lvl], memory_pos[lvl], blocked)
            outputs.append(self._predict(raw, mask_features, box_head, t))
        return outputs
