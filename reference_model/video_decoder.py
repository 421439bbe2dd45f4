"""Video transformer decoder with masked cross-attention (Mask2Former-VIS / OVFormer style).

Each of the ``num_queries`` queries describes one object over the whole clip: it
cross-attends to the T x H x W memory of one feature level at a time (round robin over the
three levels), restricted to where its previous mask prediction is foreground, and predicts a
mask for all T frames of the clip as a dot product with the per-pixel mask features.

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
    """
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    ts = (torch.arange(t, device=device, dtype=torch.float32) + 0.5) / max(t, 1)
    pe_y = sine_embedding(ys, dim // 2)[None, :, None, :].expand(t, h, w, dim // 2)
    pe_x = sine_embedding(xs, dim // 2)[None, None, :, :].expand(t, h, w, dim // 2)
    pe_t = sine_embedding(ts, dim)[:, None, None, :]
    return (torch.cat([pe_y, pe_x], dim=-1) + pe_t).reshape(t * h * w, dim)


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
    """Queries and masks after one decoder layer (index 0 = the learned queries)."""

    queries: torch.Tensor  # (B, N, D) after the final LayerNorm
    raw_queries: torch.Tensor  # (B, N, D) residual stream before it
    masks: torch.Tensor  # (B, N, T, H/4, W/4) mask logits


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
        dim_feedforward: int, num_levels: int = 3,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_pos = nn.Embedding(num_queries, hidden_dim)
        self.level_embed = nn.Embedding(num_levels, hidden_dim)
        self.layers = nn.ModuleList(
            _DecoderLayer(hidden_dim, num_heads, dim_feedforward) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(hidden_dim)
        self.mask_embed = MLP(hidden_dim, hidden_dim, hidden_dim, 3)

    def _predict(self, raw: torch.Tensor, mask_features: torch.Tensor) -> DecoderOutput:
        queries = self.norm(raw)
        masks = torch.einsum("bnc,btchw->bnthw", self.mask_embed(queries), mask_features)
        return DecoderOutput(queries=queries, raw_queries=raw, masks=masks)

    def _blocked(self, masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Boolean (B*heads, N, T*h*w) mask, True = may not attend (background)."""
        b, n, t = masks.shape[:3]
        small = nn.functional.interpolate(masks.flatten(0, 2)[:, None], size=size, mode="bilinear",
                                          align_corners=False)
        blocked = (small.sigmoid() < 0.5).view(b, n, -1)
        # A query whose mask is empty everywhere attends everywhere instead of to nothing.
        blocked[blocked.all(dim=-1)] = False
        return blocked.detach().repeat_interleave(self.num_heads, dim=0)

    def forward(self, levels: list[torch.Tensor], mask_features: torch.Tensor) -> list[DecoderOutput]:
        """``levels``: 3 tensors (B, T, D, h, w), coarse to fine; ``mask_features``:
        (B, T, D, H/4, W/4). Returns one :class:`DecoderOutput` per layer plus the initial one."""
        b, t = mask_features.shape[:2]
        memories, memory_pos, sizes = [], [], []
        for i, level in enumerate(levels):
            h, w = level.shape[-2:]
            sizes.append((h, w))
            memories.append(level.permute(0, 1, 3, 4, 2).reshape(b, t * h * w, -1) + self.level_embed.weight[i])
            memory_pos.append(position_encoding_3d(t, h, w, level.shape[2], level.device)[None])
        q_pos = self.query_pos.weight[None].expand(b, -1, -1)
        raw = self.query_feat.weight[None].expand(b, -1, -1)
        outputs = [self._predict(raw, mask_features)]
        for i, layer in enumerate(self.layers):
            lvl = i % self.num_levels
            blocked = self._blocked(outputs[-1].masks, sizes[lvl])
            raw = layer(raw, q_pos, memories[lvl], memory_pos[lvl], blocked)
            outputs.append(self._predict(raw, mask_features))
        return outputs
