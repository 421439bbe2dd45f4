"""MaskCaptioner: clip-level segmentation, detection and classification plus the captioning
head, assembled from the component modules.

Example:
    >>> import torch
    >>> from reference_model.config import get_config
    >>> model = MaskCaptioner(config=get_config("tiny", num_classes=3), vocab_size=20,
    ...                       pad_token_id=0, bos_token_id=1, eos_token_id=2)
    >>> out = model(torch.zeros(1, 2, 3, 64, 64))
    >>> tuple(out.layers[-1].boxes.shape), tuple(out.scores.shape)
    ((1, 8, 2, 4), (1, 8))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from reference_model.caption_head import CaptionHead
from reference_model.config import ModelConfig
from reference_model.heads import BoxHead, ClassHead, clip_score
from reference_model.matcher import ClipTargets, LayerPrediction
from reference_model.pixel_decoder import PixelDecoder
from reference_model.video_decoder import MLP, VideoTransformerDecoder


@dataclass
class ClipOutput:
    """Everything the losses, the tracker and the caption head need from one batch of clips."""

    layers: list[LayerPrediction]  # one per decoder layer; the last is the prediction
    queries: torch.Tensor  # (B, N, D) after the decoder's final LayerNorm
    raw_queries: torch.Tensor  # (B, N, D) before it
    scores: torch.Tensor  # (B, N) per-clip score S
    clips: torch.Tensor  # (B, T, 3, H, W) the input, for the caption head's image encoder


class MaskCaptioner(nn.Module):
    """The full model; ``forward`` runs the detector, :meth:`caption_loss` the caption head."""

    def __init__(self, *, config: ModelConfig, vocab_size: int, pad_token_id: int,
                 bos_token_id: int, eos_token_id: int,
                 class_embeddings: torch.Tensor | None = None) -> None:
        super().__init__()
        self.cfg = config
        d = config.hidden_dim
        self.pixel_decoder = PixelDecoder(config=config)
        self.decoder = VideoTransformerDecoder(
            hidden_dim=d, num_queries=config.num_queries, num_layers=config.decoder_layers,
            num_heads=config.num_heads, dim_feedforward=config.dim_feedforward,
        )
        self.class_head = ClassHead(hidden_dim=d, num_classes=config.num_classes, class_embeddings=class_embeddings)
        self.objectness_head = MLP(d, d, 2, 2)
        self.box_head = BoxHead(hidden_dim=d, num_layers=config.box_head_layers,
                                mask_anchor=config.box_head_mask_anchor)
        self.caption_head = CaptionHead(
            config=config, vocab_size=vocab_size, pad_token_id=pad_token_id,
            bos_token_id=bos_token_id, eos_token_id=eos_token_id,
        )

    def detector_parameters(self) -> list[nn.Parameter]:
        """Everything but the caption head (frozen in the second training stage)."""
        head = {id(p) for p in self.caption_head.parameters()}
        return [p for p in self.parameters() if id(p) not in head]

    def forward(self, clips: torch.Tensor) -> ClipOutput:
        """``clips``: (B, T, 3, H, W) floats in [0, 1], H and W multiples of 32."""
        b, t = clips.shape[:2]
        levels, mask_features = self.pixel_decoder(clips.flatten(0, 1))
        levels = [x.view(b, t, *x.shape[1:]) for x in levels]
        mask_features = mask_features.view(b, t, *mask_features.shape[1:])
        outs = self.decoder(levels, mask_features)
        layers = [
            LayerPrediction(
                class_logits=self.class_head(o.queries),
                objectness=self.objectness_head(o.queries),
                masks=o.masks,
                boxes=self.box_head(o.queries, t, o.masks),
            )
            for o in outs
        ]
        last = layers[-1]
        return ClipOutput(layers=layers, queries=outs[-1].queries, raw_queries=outs[-1].raw_queries,
                          scores=clip_score(last.class_logits, last.objectness), clips=clips)

    def caption_inputs(self, out: ClipOutput, batch_index: torch.Tensor,
                       query_index: torch.Tensor) -> torch.Tensor:
        """Q-Former outputs for the selected (batch element, query) pairs."""
        queries = out.queries if self.cfg.caption_query == "normalised" else out.raw_queries
        masks = out.layers[-1].masks[batch_index, query_index].detach()
        used, position = torch.unique(batch_index, return_inverse=True)
        features = self.caption_head.image_features(out.clips[used])[position]
        return self.caption_head.encode(queries[batch_index, query_index], masks, features)

    def caption_loss(self, out: ClipOutput, targets: list[ClipTargets],
                     matches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor | None:
        """Language-modelling loss of the matched queries whose object has a caption."""
        b_idx, q_idx, ids = [], [], []
        for b, ((qi, ti), tgt) in enumerate(zip(matches, targets)):
            for q, k in zip(qi.tolist(), ti.tolist()):
                if tgt.caption_ids[k]:
                    b_idx.append(b)
                    q_idx.append(q)
                    ids.append(tgt.caption_ids[k])
        if not ids:
            return None
        device = out.queries.device
        encoded = self.caption_inputs(out, torch.tensor(b_idx, device=device), torch.tensor(q_idx, device=device))
        return self.caption_head.loss(encoded, ids)
