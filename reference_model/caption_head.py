"""Captioning heads: a BLIP-2 Q-Former reading mask-restricted features, projected into a
causal language model (OPT), with detection-score-weighted temporal aggregation.

Both heads are built from transformers' ``Blip2VisionModel`` (the BLIP-2 EVA ViT),
``Blip2QFormerModel`` and ``OPTForCausalLM``:

* :class:`CaptionHead` (``tiny`` and ``paper``, trainable). For one object in one clip, the
  Q-Former's input tokens are the learned query tokens plus the projected object query; they
  cross-attend to the patch features of the caption head's own image encoder over the T
  frames, restricted to the object's predicted mask. Its outputs, projected to the language
  model's embedding size, prefix the caption. For a track, ``T_agg`` clips sampled uniformly
  over the track are encoded and averaged with detection-score weights into one prefix, so the
  track gets one caption.
* :class:`OfficialCaptionHead`: inference of the released CaptionFormer checkpoints, output
  for output (see its docstring for the official conventions it reproduces).

Example:
    >>> import torch
    >>> aggregation_plan(torch.tensor([0.9, 0.6, 0.8, 0.7, 0.5]), t_agg=3)
    (tensor([0, 2, 4]), tensor([0.4091, 0.3636, 0.2273]))
    >>> box_attention_mask(torch.tensor([0.25, 0.5, 0.5, 0.5]), grid=4).view(4, 4).int()
    tensor([[1, 1, 1, 1],
            [1, 1, 1, 1],
            [1, 0, 0, 1],
            [1, 1, 1, 1]], dtype=torch.int32)
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from transformers import (
    Blip2QFormerConfig, Blip2QFormerModel, Blip2VisionConfig, Blip2VisionModel, OPTConfig,
    OPTForCausalLM,
)

from reference_model.config import CONFIGS, ModelConfig
from reference_model.generation import BeamSearch
from reference_model.pixel_decoder import normalise_images
from reference_model.video_decoder import box_attention_blocked


def pretrained_opt(path: str | Path, *, expected_hidden_size: int,
                   dtype: torch.dtype | None = None) -> OPTForCausalLM:
    """An OPT language model from a local transformers folder (``save_pretrained`` layout)."""
    lm = OPTForCausalLM.from_pretrained(path, local_files_only=True, dtype=dtype)
    if lm.config.word_embed_proj_dim != expected_hidden_size:
        raise ValueError(f"{path}: OPT embedding size {lm.config.word_embed_proj_dim}, the caption head "
                         f"projects to {expected_hidden_size}")
    return lm


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
        self.lm = pretrained_opt(path, expected_hidden_size=self.lm_proj.out_features)
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


# ---------------------------------------------------------------------------------------------
# The official CaptionFormer captioning head (inference of the released checkpoints).

# EVA ViT-g/14 (LAVIS ``create_eva_vit_g``) is transformers' default BLIP-2 vision config; the
# official model reads 364 x 364 images. The default Q-Former config is BERT-base with
# cross-attention every 2nd layer to 1408-wide features; OPT-2.7B is the ``paper`` language model.
EVA_VIT_G_364 = dict(image_size=364)


def box_attention_mask(box: torch.Tensor, *, grid: int) -> torch.Tensor:
    """(g*g,) bool, True OUTSIDE the box: the official rasterisation on the EVA patch grid,
    the same as the box-only decoder's cross-attention mask
    (:func:`reference_model.video_decoder.box_attention_blocked`).

    ``box`` = (x_min, y_min, w, h) as fractions of the padded frame.
    """
    return box_attention_blocked(box[None, None, None], (grid, grid))[0, 0]


def mask_attention_mask(mask_logits: torch.Tensor, *, grid: int) -> torch.Tensor:
    """(g*g,) bool, True where the object's mask is OFF: ``sigmoid(resize(logits)) < 0.5``.

    ``mask_logits`` (h, w) are resized bilinearly (align_corners=False) to the EVA patch grid.
    """
    small = F.interpolate(mask_logits[None, None], size=grid, mode="bilinear", align_corners=False)
    return small.sigmoid().flatten() < 0.5


@dataclass
class QFormerCall:
    """One Q-Former call of a caption, kept for checks against the official intermediates."""

    clip: int
    frame: int
    image: torch.Tensor  # (1, 3, s, s) EVA input
    image_features: torch.Tensor  # (1, 1 + g*g, C) ln_vision(EVA(image))
    attention_mask: torch.Tensor  # (1, g*g + 1) bool, the Q-Former's encoder_attention_mask
    query_embeds: torch.Tensor  # (1, 1 + num_query_tokens, H)
    output: torch.Tensor  # (1, 1 + num_query_tokens, H) last hidden state


@dataclass
class CaptionTrace:
    """Intermediates of one track's caption (``OfficialCaptionHead.caption_tracks(trace=...)``)."""

    track: int
    calls: list[QFormerCall] = field(default_factory=list)
    clip_scores: torch.Tensor | None = None  # (n,) S of the aggregated clips (video path only)
    lm_inputs: torch.Tensor | None = None  # (1, 1 + num_query_tokens + 1, d) OPT inputs_embeds
    token_ids: torch.Tensor | None = None  # (1, L) generated ids


# Official key (after ``captioning_head.``) -> ours. Applied in order, first match wins; the
# EVA q/v biases and the unused Q-Former position ids are handled in ``_convert_official``.
_OFFICIAL_RENAMES = [
    (r"visual_encoder\.cls_token$", "vision.embeddings.class_embedding"),
    (r"visual_encoder\.pos_embed$", "vision.embeddings.position_embedding"),
    (r"visual_encoder\.patch_embed\.proj\.", "vision.embeddings.patch_embedding."),
    (r"visual_encoder\.blocks\.(\d+)\.norm(\d)\.", r"vision.encoder.layers.\1.layer_norm\2."),
    (r"visual_encoder\.blocks\.(\d+)\.attn\.qkv\.weight$", r"vision.encoder.layers.\1.self_attn.qkv.weight"),
    (r"visual_encoder\.blocks\.(\d+)\.attn\.proj\.", r"vision.encoder.layers.\1.self_attn.projection."),
    (r"visual_encoder\.blocks\.(\d+)\.mlp\.", r"vision.encoder.layers.\1.mlp."),
    (r"ln_vision\.", "vision.post_layernorm."),
    (r"Qformer\.bert\.embeddings\.LayerNorm\.", "qformer.layernorm."),
    (r"Qformer\.bert\.encoder\.layer\.(\d+)\.(attention|crossattention)\.self\.",
     r"qformer.encoder.layer.\1.\2.attention."),
    (r"Qformer\.bert\.encoder\.layer\.", "qformer.encoder.layer."),
    (r"query_tokens$", "query_tokens"),
    (r"obj_linear_proj\.", "object_proj."),
    (r"opt_proj\.", "lm_proj."),
    (r"opt_model\.", "lm."),
]
_EVA_QV_BIAS = re.compile(r"visual_encoder\.blocks\.(\d+)\.attn\.([qv])_bias$")
# The official code deletes the Q-Former's word and position embeddings but keeps this buffer.
_UNUSED_OFFICIAL = {"Qformer.bert.embeddings.position_ids"}
# Parts of our module that may come from outside the checkpoint (see ``official_state_dict``).
_EXTERNAL_PARTS = {"eva": ("vision.embeddings.", "vision.encoder."), "opt": ("lm.",)}


def _convert_official(official: Mapping[str, torch.Tensor],
                      expected: Collection[str]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Official keys (prefix removed) -> (our ``expected`` keys and tensors, official keys not consumed)."""
    ours: dict[str, torch.Tensor] = {}
    unconsumed = []
    qv_bias: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in official.items():
        if key in _UNUSED_OFFICIAL:
            continue
        bias = _EVA_QV_BIAS.match(key)
        if bias:
            qv_bias.setdefault(bias.group(1), {})[bias.group(2)] = value
            continue
        rule = next(((p, r) for p, r in _OFFICIAL_RENAMES if re.match(p, key)), None)
        new_key = re.sub(rule[0], rule[1], key, count=1) if rule else None
        if new_key in expected:
            ours[new_key] = value
        else:
            unconsumed.append(key)
    for layer, biases in qv_bias.items():
        new_key = f"vision.encoder.layers.{layer}.self_attn.qkv.bias"
        if set(biases) != {"q", "v"} or new_key not in expected:
            unconsumed.extend(f"visual_encoder.blocks.{layer}.attn.{b}_bias" for b in biases)
            continue
        # EVA's attention has no key bias: the fused qkv bias is (q, 0, v).
        ours[new_key] = torch.cat([biases["q"], torch.zeros_like(biases["q"]), biases["v"]])
    return ours, unconsumed


class OfficialCaptionHead(nn.Module):
    """The released CaptionFormer captioning head (``Blip2OPTVideo`` at inference).

    Official conventions reproduced as they are (fp32, CPU: every intermediate within 1e-5 of
    the official code, identical token ids):

    * Only tracks whose best per-clip score ``max_i S`` is at least ``score_threshold`` (0.3)
      get a caption.
    * EVA ViT-g reads one normalised, zero-padded frame, padding included, resized bilinearly
      (align_corners=False) to ``image_size`` (364); the CLS token is kept and ``ln_vision``
      (a separate LayerNorm, eps 1e-5; ``vision.post_layernorm`` here) follows.
    * Q-Former tokens are ``[object_proj(object query); query_tokens]`` (object first). The
      cross-attention mask is built on the g x g patch grid and is True OUTSIDE the object
      (mask logits: ``sigmoid(bilinear resize) < 0.5``; boxes: outside the rasterised box), with
      a True column appended at the END, and is passed as BERT's ``encoder_attention_mask``
      where True means attend. So the Q-Former reads the background, and as EVA's CLS is
      token 0, cell k's value applies to token k: CLS takes cell 0's, each patch its next
      cell's, and the last patch is always read.
    * EVA runs once per frame read and its features are shared by all tracks (the official
      code reran it for each call, with the same result).
    * ``aggregate`` (VidSTG, VLN: the official ``generate_video``): ``num_aggregated_clips``
      calls at clips ``linspace(0, nclips - 1, n).long()`` (repeats included), their Q-Former
      outputs averaged with ``w = S / (sum S + 1e-6)`` (or plainly, ``"arithmetic mean"``), then
      ``lm_proj``. Otherwise (LV-VIS: ``generate``) the clip with the highest S.
    * A clip of several frames is read at one frame ``torch.randint(0, Tc, (1,))`` drawn from the
      global RNG per call (no draw for one-frame clips).
    * OPT gets ``[lm_proj(prefix); embedding of BOS]`` (the empty prompt) and generates with
      :class:`~reference_model.generation.BeamSearch` (transformers 4.28 rules; the ids start
      with BOS, ``"\\n"`` = 50118 ends a caption).
    * ``middle_clip`` (Table 8's middle-frame variant, the official ``test_agg_middle_clip`` /
      ``middle_frame_captioning``): the clip ``(num_frames // clip_len) // 2`` instead.

    Example:
        >>> import torch
        >>> head = OfficialCaptionHead(
        ...     box_mode=True, aggregate=True, num_aggregated_clips=3, object_dim=16,
        ...     num_query_tokens=4, generation=BeamSearch(max_length=5),
        ...     vision_kwargs=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        ...                        num_attention_heads=2, image_size=28, patch_size=14),
        ...     qformer_kwargs=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        ...                         intermediate_size=64, encoder_hidden_size=32),
        ...     lm_kwargs=dict(vocab_size=50272, hidden_size=8, num_hidden_layers=1, ffn_dim=16,
        ...                    num_attention_heads=2, word_embed_proj_dim=8)).eval()
        >>> ids = head.caption_tracks(
        ...     torch.randn(2, 3, 32, 32), frame_ranges=[(0, 1), (1, 2)],
        ...     embeddings=[torch.randn(2, 16)] * 2, regions=[torch.rand(2, 1, 4)] * 2,
        ...     scores=torch.tensor([[0.9, 0.5], [0.1, 0.2]]))
        >>> ids[0].shape[0] <= 5, ids[0][0].item(), ids[1]
        (True, 2, None)
    """

    def __init__(self, *, box_mode: bool, aggregate: bool, num_aggregated_clips: int = 32,
                 aggregation: str = "weighted mean", middle_clip: bool = False,
                 score_threshold: float = 0.3, object_dim: int = 256, num_query_tokens: int = 32,
                 vision_kwargs: Mapping[str, Any] = EVA_VIT_G_364, ln_vision_eps: float = 1e-5,
                 qformer_kwargs: Mapping[str, Any] | None = None, lm_kwargs: Mapping[str, Any] | None = None,
                 generation: BeamSearch = BeamSearch()) -> None:
        super().__init__()
        if aggregation not in ("weighted mean", "arithmetic mean"):
            raise ValueError(f"aggregation {aggregation!r}: 'weighted mean' or 'arithmetic mean'")
        self.box_mode = box_mode
        self.aggregate = aggregate
        self.num_aggregated_clips = num_aggregated_clips
        self.aggregation = aggregation
        self.middle_clip = middle_clip
        self.score_threshold = score_threshold
        self.generation = generation
        self.vision = Blip2VisionModel(Blip2VisionConfig(**vision_kwargs))
        self.vision.post_layernorm.eps = ln_vision_eps  # ln_vision's eps, not the ViT's
        self.qformer = Blip2QFormerModel(Blip2QFormerConfig(**(qformer_kwargs or {})))
        hidden = self.qformer.config.hidden_size
        self.query_tokens = nn.Parameter(torch.zeros(1, num_query_tokens, hidden))
        self.object_proj = nn.Linear(object_dim, hidden)
        self.lm = OPTForCausalLM(OPTConfig(**(lm_kwargs or CONFIGS["paper"].lm_kwargs)))
        self.lm_proj = nn.Linear(hidden, self.lm.config.word_embed_proj_dim)

    @property
    def grid(self) -> int:
        """Patches per side of the EVA input: the attention masks' grid."""
        return self.vision.config.image_size // self.vision.config.patch_size

    def image_features(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(3, H, W) normalised padded frame -> (EVA input (1, 3, s, s), features (1, 1 + g*g, C))."""
        size = self.vision.config.image_size
        image = F.interpolate(frame[None], size=(size, size), mode="bilinear", align_corners=False)
        return image, self.vision(pixel_values=image).last_hidden_state

    def attention_mask(self, region: torch.Tensor) -> torch.Tensor:
        """Box (4,) or mask logits (h, w) -> (1, g*g + 1) bool Q-Former encoder_attention_mask."""
        grid = self.grid
        cells = box_attention_mask(region, grid=grid) if self.box_mode else mask_attention_mask(region, grid=grid)
        return torch.cat([cells, cells.new_ones(1)])[None]

    def query_embeds(self, embedding: torch.Tensor) -> torch.Tensor:
        """(D,) object query -> (1, 1 + num_query_tokens, H) Q-Former input tokens."""
        return torch.cat([self.object_proj(embedding)[None, None], self.query_tokens], dim=1)

    def encode(self, image_features: torch.Tensor, region: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """Q-Former output (1, 1 + num_query_tokens, H) for one object: its query ``embedding``
        (D,) reading the frame's EVA ``image_features`` (1, 1 + g*g, C) through the attention
        mask of its ``region`` in that frame (box (4,) or mask logits (h, w))."""
        return self.qformer(query_embeds=self.query_embeds(embedding), encoder_hidden_states=image_features,
                            encoder_attention_mask=self.attention_mask(region)).last_hidden_state

    def loss(self, encoded: torch.Tensor, token_ids: list[list[int]]) -> torch.Tensor:
        """Caption loss of the official training (``Blip2OPTVideo.forward``) for Q-Former
        outputs (M, L, H): OPT reads ``[lm_proj(encoded); token embeddings]`` with no prompt;
        each caption's ids (BOS first, "\\n" last, as the tokenizer gives ``caption + "\\n"``)
        are all targets, the BOS predicted from the last prefix token; the token cross-entropy
        is averaged per caption, then over the captions."""
        embeds = self.lm.get_input_embeddings()
        prefix = self.lm_proj(encoded).to(embeds.weight.dtype)
        losses = []
        for row, ids in zip(prefix, token_ids):
            tokens = torch.tensor(ids, dtype=torch.long, device=encoded.device)
            inputs = torch.cat([row, embeds(tokens)])[None]
            # Position i predicts token i + 1: the last prefix position predicts the BOS.
            logits = self.lm(inputs_embeds=inputs).logits[0, row.shape[0] - 1: -1]
            losses.append(F.cross_entropy(logits.float(), tokens))
        return torch.stack(losses).mean()

    def lm_inputs(self, prefix: torch.Tensor) -> torch.Tensor:
        """(1, L, H) Q-Former output -> (1, L + 1, d) OPT inputs: projected prefix, then BOS."""
        bos = torch.full((1, 1), self.generation.bos_token_id, dtype=torch.long, device=prefix.device)
        embeds = self.lm.get_input_embeddings()
        return torch.cat([self.lm_proj(prefix).to(embeds.weight.dtype), embeds(bos)], dim=1)

    def _clips_to_read(self, best_clip: int, frame_ranges: Sequence[tuple[int, int]]) -> list[int]:
        if self.middle_clip:
            clip_len = int(frame_ranges[0][1]) - int(frame_ranges[0][0])
            return [int(frame_ranges[-1][1]) // clip_len // 2]
        if self.aggregate:
            n = len(frame_ranges)
            return torch.linspace(0, n - 1, steps=self.num_aggregated_clips).long().tolist()
        return [best_clip]

    @torch.no_grad()
    def caption_tracks(self, images: torch.Tensor, *, frame_ranges: Sequence[tuple[int, int]],
                       embeddings: Sequence[torch.Tensor], regions: Sequence[torch.Tensor],
                       scores: torch.Tensor, trace: list[CaptionTrace] | None = None) -> list[torch.Tensor | None]:
        """One caption (token ids) per track, in track order; None for tracks not captioned.

        ``images`` (T, 3, H, W): the normalised, zero-padded frames (only the frames read are
        indexed). For each clip i, in time order: ``frame_ranges[i]`` = (first frame, end),
        ``embeddings[i]`` (N, D) the tracks' object queries, ``regions[i]`` the tracks' boxes
        (N, Tc, 4) or mask logits (N, Tc, h, w), all already reordered into tracks (track j of
        every clip is the same object). ``scores`` (N, nclips): S. Returns for each track its
        raw generated ids (L,), starting with BOS. ``trace``, if given, receives a
        :class:`CaptionTrace` per captioned track. The global torch RNG is drawn as the
        official code draws it (multi-frame clips only).
        """
        features: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # frame -> EVA, shared by all tracks
        captions: list[torch.Tensor | None] = []
        best_score, best_clip = scores.max(dim=1)
        for track in range(scores.shape[0]):
            if best_score[track] < self.score_threshold:
                captions.append(None)
                continue
            record = CaptionTrace(track=track)
            clips = self._clips_to_read(int(best_clip[track]), frame_ranges)
            outputs = []
            for clip in clips:
                start, end = (int(v) for v in frame_ranges[clip])
                offset = int(torch.randint(0, end - start, (1,))) if end - start > 1 else 0
                frame = start + offset
                if frame not in features:
                    features[frame] = self.image_features(images[frame])
                image, image_features = features[frame]
                region, embedding = regions[clip][track, offset], embeddings[clip][track]
                output = self.encode(image_features, region, embedding)
                outputs.append(output)
                record.calls.append(QFormerCall(clip=clip, frame=frame, image=image, image_features=image_features,
                                                attention_mask=self.attention_mask(region),
                                                query_embeds=self.query_embeds(embedding), output=output))
            stacked = torch.stack(outputs)  # (n, 1, L, H)
            if not self.aggregate:
                prefix = stacked[0]
            elif self.aggregation == "weighted mean":
                record.clip_scores = scores[track, clips]
                weights = record.clip_scores / (record.clip_scores.sum() + 1e-6)
                prefix = (stacked * weights[:, None, None, None].to(stacked.dtype)).sum(dim=0)
            else:
                prefix = stacked.mean(dim=0)
            record.lm_inputs = self.lm_inputs(prefix)
            record.token_ids = self.generation(self.lm, record.lm_inputs)
            captions.append(record.token_ids[0])
            if trace is not None:
                trace.append(record)
        return captions

    def official_state_dict(self, official: Mapping[str, torch.Tensor], *, prefix: str = "captioning_head.",
                            external: Collection[str] = ()) -> dict[str, torch.Tensor]:
        """Our state dict from the official one (full key names, e.g. ``captioning_head.opt_proj.weight``).

        ``external`` may name ``"eva"`` and/or ``"opt"``: parts the checkpoint may lack because
        they are loaded afterwards from their own files (:meth:`load_eva_vit_g`,
        :meth:`load_opt`); what the checkpoint has of them is still mapped. Raises ValueError
        listing every official key under ``prefix`` not consumed and every key of ours not
        produced (outside the external parts).
        """
        unknown_parts = set(external) - set(_EXTERNAL_PARTS)
        if unknown_parts:
            raise ValueError(f"unknown external parts {sorted(unknown_parts)}; choose from {sorted(_EXTERNAL_PARTS)}")
        expected = self.state_dict()
        ours, unconsumed = _convert_official(
            {k[len(prefix):]: v for k, v in official.items() if k.startswith(prefix)}, expected)
        optional = tuple(p for part in external for p in _EXTERNAL_PARTS[part])
        missing = sorted(k for k in expected if k not in ours and not k.startswith(optional))
        unconsumed = sorted(prefix + k for k in unconsumed)
        if unconsumed or missing:
            raise ValueError(f"official captioning head keys not consumed: {unconsumed}; "
                             f"caption head keys not produced: {missing}")
        return ours

    def load_eva_vit_g(self, path: str | Path) -> list[str]:
        """Load LAVIS's ``eva_vit_g.pth`` (EVA ViT-g/14 at 224 px) into the image encoder.

        As the official ``create_eva_vit_g`` does, the position embeddings are resized
        bicubically (align_corners=False) to this head's grid when they differ, and keys the
        encoder lacks are skipped: they are returned. ``ln_vision`` is not in that file (it
        comes with the checkpoint). Raises ValueError if an encoder weight is missing.
        """
        eva = torch.load(path, map_location="cpu", weights_only=True)
        positions = eva.get("pos_embed")
        if positions is not None and positions.shape[1] != 1 + self.grid ** 2:
            side = int((positions.shape[1] - 1) ** 0.5)
            patches = positions[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
            patches = F.interpolate(patches, size=(self.grid, self.grid), mode="bicubic", align_corners=False)
            eva = {**eva, "pos_embed": torch.cat([positions[:, :1].float(), patches.permute(0, 2, 3, 1).flatten(1, 2)],
                                                 dim=1).to(positions.dtype)}
        encoder = {k for k in self.state_dict() if k.startswith(_EXTERNAL_PARTS["eva"])}
        ours, skipped = _convert_official({"visual_encoder." + k: v for k, v in eva.items()}, encoder)
        missing = sorted(encoder - set(ours))
        if missing:
            raise ValueError(f"{path}: EVA weights missing for {missing}")
        self.load_state_dict(ours, strict=False, assign=True)
        return [k.removeprefix("visual_encoder.") for k in skipped]

    def load_opt(self, path: str | Path, *, dtype: torch.dtype = torch.float32) -> None:
        """Replace the language model by a local transformers OPT folder (e.g. facebook/opt-2.7b).

        The official code ran OPT in float16 (``dtype=torch.float16``); float32 reproduces its
        CPU outputs.
        """
        self.lm = pretrained_opt(path, expected_hidden_size=self.lm_proj.out_features, dtype=dtype)
