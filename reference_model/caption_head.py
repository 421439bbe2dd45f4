"""Captioning head: a BLIP-2 Q-Former reading mask-restricted features, projected into a
causal language model (OPT), with detection-score-weighted temporal aggregation.

For one object in one clip, the Q-Former's input tokens are the learned query tokens plus
the projected object query; they cross-attend to the patch features of the caption head's own
image encoder (a BLIP-2 ViT) over the T frames, restricted to the object's predicted mask.
Its outputs, projected to the language model's embedding size, prefix the caption. For a track, ``T_agg`` clips sampled uniformly over the
track are encoded and averaged with detection-score weights into one prefix, so the track
gets one caption.

Example:
    >>> import torch
    >>> aggregation_plan(torch.tensor([0.9, 0.6, 0.8, 0.7, 0.5]), t_agg=3)
    (tensor([0, 2, 4]), tensor([0.4091, 0.3636, 0.2273]))
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    Blip2QFormerConfig, Blip2QFormerModel, Blip2VisionConfig, Blip2VisionModel, OPTConfig,
    OPTForCausalLM,
)

from reference_model.config import ModelConfig
from reference_model.pixel_decoder import normalise_images


def aggregation_plan(scores: torch.Tensor, *, t_agg: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of a track's clips to aggregate and with what weight.

    ``scores``: the track's per-clip detection scores S, in time order. Returns the indices of
    ``t_agg`` clips spread uniformly over the track (all clips when there are fewer) and
    their weights S_i / sum S_i (the paper's score-weighted sum, normalised so that the
    prefix keeps the scale of single-clip training).
    """
    n = len(scores)
    if n <= t_agg:
        chosen = torch.arange(n)
    else:
        chosen = torch.linspace(0, n - 1, t_agg).round().long()
    weights = scores[chosen].float()
    return chosen, weights / weights.sum().clamp(min=1e-12)


class CaptionHead(nn.Module):
    """Q-Former + language model; trained with the language-modelling loss."""

    def __init__(self, *, config: ModelConfig, vocab_size: int, pad_token_id: int,
                 bos_token_id: int, eos_token_id: int) -> None:
        super().__init__()
        self.cfg = config
        self.vision = Blip2VisionModel(Blip2VisionConfig(**config.caption_vision_kwargs))
        feature_dim = self.vision.config.hidden_size
        self.qformer = Blip2QFormerModel(Blip2QFormerConfig(
            hidden_size=config.qformer_hidden, num_hidden_layers=config.qformer_layers,
            num_attention_heads=config.qformer_heads, intermediate_size=config.qformer_intermediate,
            encoder_hidden_size=feature_dim,
            cross_attention_frequency=config.qformer_cross_attention_frequency,
        ))
        self.query_tokens = nn.Parameter(torch.randn(1, config.num_query_tokens, config.qformer_hidden) * 0.02)
        self.object_proj = nn.Linear(config.hidden_dim, config.qformer_hidden)
        lm_kwargs = dict(config.lm_kwargs)
        lm_kwargs.update(vocab_size=vocab_size, pad_token_id=pad_token_id,
                         bos_token_id=bos_token_id, eos_token_id=eos_token_id)
        self.lm = OPTForCausalLM(OPTConfig(**lm_kwargs))
        self.lm_proj = nn.Linear(config.qformer_hidden, self.lm.config.word_embed_proj_dim)
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        if config.freeze_lm:
            self.lm.requires_grad_(False)
        if config.freeze_caption_vision:
            self.vision.requires_grad_(False)

    def load_vision(self, path: str) -> None:
        """Replace the image encoder by pretrained BLIP-2 vision weights from a local folder."""
        self.vision = Blip2VisionModel.from_pretrained(path, local_files_only=True)
        if self.cfg.freeze_caption_vision:
            self.vision.requires_grad_(False)

    def image_features(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) in [0, 1] -> patch features (B, T, H/p, W/p, C) (class token dropped)."""
        b, t, _, h, w = clips.shape
        p = self.vision.config.patch_size
        out = self.vision(pixel_values=normalise_images(clips.flatten(0, 1)),
                          interpolate_pos_encoding=True).last_hidden_state[:, 1:]
        return out.reshape(b, t, h // p, w // p, -1)

    def load_language_model(self, path: str) -> None:
        """Replace the language model by pretrained weights from a local folder."""
        self.lm = OPTForCausalLM.from_pretrained(path, local_files_only=True)
        if self.cfg.freeze_lm:
            self.lm.requires_grad_(False)

    def attention_mask(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """(M, T, h, w) mask logits -> (M, T*h*w) Q-Former cross-attention mask, 1 = attend.

        ``inside`` attends to the predicted object; ``outside`` is the inverted polarity.
        An object with no pixel on the attended side attends everywhere.
        """
        fg = mask_logits.flatten(1).sigmoid() > 0.5
        attend = fg if self.cfg.qformer_mask_polarity == "inside" else ~fg
        attend[~attend.any(dim=1)] = True
        return attend.long()

    def encode(self, object_queries: torch.Tensor, mask_logits: torch.Tensor,
               features: torch.Tensor) -> torch.Tensor:
        """Q-Former outputs for M (object, clip) pairs.

        ``object_queries`` (M, D), ``mask_logits`` (M, T, h, w), ``features`` (M, T, gh, gw, C)
        from :meth:`image_features` -> (M, num_query_tokens + 1, qformer_hidden).
        """
        m, t, gh, gw = features.shape[:4]
        tokens = torch.cat([self.query_tokens.expand(m, -1, -1),
                            self.object_proj(object_queries)[:, None]], dim=1)
        if mask_logits.shape[-2:] != (gh, gw):
            mask_logits = F.interpolate(mask_logits.float(), size=(gh, gw), mode="bilinear", align_corners=False)
        out = self.qformer(query_embeds=tokens, encoder_hidden_states=features.flatten(1, 3),
                           encoder_attention_mask=self.attention_mask(mask_logits))
        return out.last_hidden_state

    def _prefix(self, encoded: torch.Tensor) -> torch.Tensor:
        return self.lm_proj(encoded).to(self.lm.dtype)

    def loss(self, encoded: torch.Tensor, token_ids: list[list[int]]) -> torch.Tensor:
        """Mean token cross-entropy of the captions given the Q-Former outputs (M, L, H)."""
        device = encoded.device
        seqs = [[self.bos_token_id] + ids[: self.cfg.max_caption_tokens] + [self.eos_token_id] for ids in token_ids]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long, device=device)
        labels = torch.full_like(ids, -100)
        text_mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, device=device)
            labels[i, 1: len(s)] = ids[i, 1: len(s)]  # the BOS is input only
            text_mask[i, : len(s)] = 1
        prefix = self._prefix(encoded)
        embeds = torch.cat([prefix, self.lm.get_input_embeddings()(ids)], dim=1)
        attention = torch.cat([torch.ones(prefix.shape[:2], dtype=torch.long, device=device), text_mask], dim=1)
        full_labels = torch.cat([torch.full(prefix.shape[:2], -100, dtype=torch.long, device=device), labels], dim=1)
        return self.lm(inputs_embeds=embeds, attention_mask=attention, labels=full_labels).loss

    @torch.no_grad()
    def generate(self, encoded: torch.Tensor) -> list[list[int]]:
        """Greedy caption token ids (without BOS/EOS) for Q-Former outputs (M, L, H)."""
        prefix = self._prefix(encoded)
        bos = self.lm.get_input_embeddings()(
            torch.full((prefix.shape[0], 1), self.bos_token_id, dtype=torch.long, device=prefix.device))
        embeds = torch.cat([prefix, bos], dim=1)
        out = self.lm.generate(
            inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device),
            max_new_tokens=self.cfg.max_caption_tokens, do_sample=False, num_beams=1,
            eos_token_id=self.eos_token_id, pad_token_id=self.pad_token_id,
        )
        result = []
        for row in out.tolist():
            ids = []
            for token in row:
                if token == self.eos_token_id:
                    break
                if token not in (self.pad_token_id, self.bos_token_id):
                    ids.append(token)
            result.append(ids)
        return result
