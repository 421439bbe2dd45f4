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

import contextlib
import re
from collections import defaultdict
from dataclasses import dataclass, replace

import torch
from torch import nn

from reference_model.caption_head import CaptionHead, OfficialCaptionHead, aggregation_plan
from reference_model.config import ModelConfig
from reference_model.generation import BeamSearch
from reference_model.heads import BoxHead, ClassHead, ZeroShotClassHead, clip_score
from reference_model.matcher import ClipTargets, LayerPrediction
from reference_model.official_keys import map_official
from reference_model.pixel_decoder import OfficialPixelDecoder, PixelDecoder
from reference_model.video_decoder import MLP, VideoTransformerDecoder


# The official predictor (``sem_seg_head.predictor.``) holds the video decoder and the
# prediction heads; its input projections are identities (features are already 256 wide).
_LAYER = r"transformer_{}_layers\.(\d+)\."
_PREDICTOR_RULES = {
    "decoder.": [
        (_LAYER.format("cross_attention") + r"multihead_attn\.(.+)", r"layers.\1.cross.\2"),
        (_LAYER.format("cross_attention") + r"norm\.(.+)", r"layers.\1.norms.0.\2"),
        (_LAYER.format("self_attention") + r"self_attn\.(.+)", r"layers.\1.self_attn.\2"),
        (_LAYER.format("self_attention") + r"norm\.(.+)", r"layers.\1.norms.1.\2"),
        (_LAYER.format("ffn") + r"linear1\.(.+)", r"layers.\1.ffn.0.\2"),
        (_LAYER.format("ffn") + r"linear2\.(.+)", r"layers.\1.ffn.2.\2"),
        (_LAYER.format("ffn") + r"norm\.(.+)", r"layers.\1.norms.2.\2"),
        (r"decoder_norm\.(.+)", r"norm.\1"),
        (r"query_embed\.(.+)", r"query_pos.\1"),
        (r"(query_feat|level_embed|mask_embed)\.(.+)", r"\1.\2"),
    ],
    "class_head.": [
        (r"class_embed\.zs_weight", "weight"),
        (r"class_embed\.linear\.(\d)\.(.+)", r"proj.\1.\2"),
        (r"class_embed\.cross_attention\.multihead_attn\.(.+)", r"cross_attn.\1"),
        (r"class_embed\.cross_attention\.norm\.(.+)", r"norm.\1"),
        (r"class_embed\.(weight|bias)", r"proj.\1"),
    ],
    "objectness_head.": [(r"object_embed\.(.+)", r"\1")],
    "box_head.": [(r"box_embed\.(.+)", r"mlp.\1")],
}
# Loss weights of the official training criterion: not part of the model.
_TRAINING_ONLY = ("criterion.",)


@dataclass
class ClipOutput:
    """Everything the losses, the tracker and the caption head need from one batch of clips."""

    layers: list[LayerPrediction]  # one per decoder layer; the last is the prediction
    queries: torch.Tensor  # (B, N, D) after the decoder's final LayerNorm
    raw_queries: torch.Tensor  # (B, N, D) before it
    scores: torch.Tensor  # (B, N) per-clip score S
    clips: torch.Tensor  # (B, T, 3, H, W) the input, for the caption head's image encoder
    # Official configurations: the backbone and pixel-decoder outputs, kept for golden checks.
    features: dict[str, torch.Tensor] | None = None
    levels: list[torch.Tensor] | None = None
    mask_features: torch.Tensor | None = None


_CAPTION_MODES = ("weighted-mean", "mean", "best", "middle")


def official_caption_head(config: ModelConfig) -> OfficialCaptionHead:
    """The released checkpoints' caption head for an official configuration.

    Example:
        >>> from reference_model.config import get_config
        >>> official_caption_head(get_config("lvvis", caption_mode="all"))
        Traceback (most recent call last):
        ValueError: caption_mode must be one of ('weighted-mean', 'mean', 'best', 'middle'), got 'all'
    """
    if config.caption_mode not in _CAPTION_MODES:
        raise ValueError(f"caption_mode must be one of {_CAPTION_MODES}, got {config.caption_mode!r}")
    return OfficialCaptionHead(
        box_mode=config.mode == "box",
        aggregate=config.caption_mode != "best",
        num_aggregated_clips=config.t_agg,
        aggregation="arithmetic mean" if config.caption_mode == "mean" else "weighted mean",
        middle_clip=config.caption_mode == "middle",
        score_threshold=config.caption_threshold,
        object_dim=config.hidden_dim,
        num_query_tokens=config.num_query_tokens,
        vision_kwargs=config.caption_vision_kwargs,
        qformer_kwargs=dict(
            hidden_size=config.qformer_hidden, num_hidden_layers=config.qformer_layers,
            num_attention_heads=config.qformer_heads, intermediate_size=config.qformer_intermediate,
            cross_attention_frequency=config.qformer_cross_attention_frequency,
            encoder_hidden_size=config.caption_vision_kwargs["hidden_size"]),
        lm_kwargs=config.lm_kwargs,
        generation=BeamSearch(num_beams=config.num_beams, max_length=config.max_caption_length),
    )


class MaskCaptioner(nn.Module):
    """The full model; ``forward`` runs the detector, :meth:`caption_loss` the caption head.

    Official configurations (``config.official``) need no tokenizer ids (OPT's are fixed) and
    take the released checkpoints through :meth:`official_state_dict`; ``empty_caption_head``
    builds their caption head on the meta device (no memory, no initialisation: EVA ViT-g and
    OPT-2.7B take minutes and 16 GB to initialise) for ``load_state_dict(..., assign=True)``.
    """

    def __init__(self, *, config: ModelConfig, vocab_size: int | None = None, pad_token_id: int | None = None,
                 bos_token_id: int | None = None, eos_token_id: int | None = None,
                 class_embeddings: torch.Tensor | None = None, empty_caption_head: bool = False) -> None:
        super().__init__()
        self.cfg = config
        d = config.hidden_dim
        if config.official:
            self.pixel_decoder = OfficialPixelDecoder(
                **{k: config.backbone_kwargs[k] for k in ("embed_dim", "depths", "num_heads", "window_size")},
                stages=config.backbone_stages, encoder_layers=config.pixel_decoder_layers,
                mask_branch=config.mode == "mask", hidden_dim=d, encoder_heads=config.num_heads,
                encoder_ffn_dim=config.pixel_decoder_ffn,
            )
        else:
            self.pixel_decoder = PixelDecoder(config=config)
        self.decoder = VideoTransformerDecoder(
            hidden_dim=d, num_queries=config.num_queries, num_layers=config.decoder_layers,
            num_heads=config.num_heads, dim_feedforward=config.dim_feedforward,
            position_encoding=config.decoder_position_encoding, mask_branch=config.mode == "mask",
        )
        if config.class_head == "zero_shot":
            if class_embeddings is None:  # replaced by the checkpoint's buffer
                class_embeddings = torch.zeros(config.num_classes, config.clip_feature_dim)
            # Eight heads over CLIP's 512 dimensions whatever the decoder's, as the official head.
            self.class_head = ZeroShotClassHead(hidden_dim=d, class_embeddings=class_embeddings)
        else:
            # The official linear head has a "no class" column, which scores ignore.
            self.class_head = ClassHead(hidden_dim=d, num_classes=config.num_classes + int(config.official),
                                        class_embeddings=class_embeddings)
        self.objectness_head = MLP(d, d, 2, 2)
        # Official mask models predict no boxes (the benchmark takes them from the masks).
        self.box_head = None if config.official and config.mode == "mask" else BoxHead(
            hidden_dim=d, num_layers=config.box_head_layers, mask_anchor=config.box_head_mask_anchor,
            official=config.official)
        if config.official:
            with torch.device("meta") if empty_caption_head else contextlib.nullcontext():
                self.caption_head = official_caption_head(config)
            return
        self.caption_head = CaptionHead(
            config=config, vocab_size=vocab_size, pad_token_id=pad_token_id,
            bos_token_id=bos_token_id, eos_token_id=eos_token_id,
        )

    def official_state_dict(self, official: dict[str, torch.Tensor], *,
                            external: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        """Our state dict from an official CaptionFormer state dict (official configurations).

        Every official key must map and every key of ours must be produced; otherwise a
        ValueError lists all that do not fit (see ``official_keys.map_official``).
        ``external`` names caption-head parts that load from their own files afterwards
        (``"eva"``, ``"opt"``): the checkpoint may lack them.
        """
        if not self.cfg.official:
            raise ValueError(f"config {self.cfg.name!r} is not an official configuration")
        known = ("backbone.", "sem_seg_head.pixel_decoder.", "sem_seg_head.predictor.", "captioning_head.")
        stray = sorted(k for k in official if not k.startswith(known + _TRAINING_ONLY))
        if stray:
            raise ValueError(f"official keys of no known module ({len(stray)}): {stray}")
        ours = self.state_dict()
        result = {"pixel_decoder." + k: v for k, v in self.pixel_decoder.official_state_dict(official).items()}
        result.update({"caption_head." + k: v for k, v in self.caption_head.official_state_dict(official, external=external).items()})
        predictor = {k: v for k, v in ours.items() if k.split(".")[0] in {p[:-1] for p in _PREDICTOR_RULES}}
        # Each official name belongs to exactly one of our modules: the first table that matches.
        owner = {}
        for key in official:
            if key.startswith("sem_seg_head.predictor."):
                rest = key[len("sem_seg_head.predictor."):]
                owner[key] = next((p for p, table in _PREDICTOR_RULES.items()
                                   if any(re.fullmatch(pat, rest) for pat, _ in table)), None)
        for prefix, table in _PREDICTOR_RULES.items():
            part = {k: v for k, v in official.items() if owner.get(k) == prefix}
            mine = {k: v for k, v in predictor.items() if k.startswith(prefix)}
            result.update(map_official(part, {"sem_seg_head.predictor.": (prefix, table)}, mine,
                                       what=f"predictor ({prefix[:-1]})"))
        unowned = sorted(k for k, p in owner.items() if p is None)
        if unowned:
            raise ValueError(f"official predictor keys not used ({len(unowned)}): {unowned}")
        return result

    def set_class_embeddings(self, class_embeddings: torch.Tensor) -> None:
        """Give the zero-shot class head new class-name embeddings (C', E): the same trained
        model then classifies C' other categories (fine-tuning or predicting on another
        vocabulary). ``cfg.num_classes`` follows.

        Example:
            >>> from reference_model.config import get_config
            >>> model = MaskCaptioner(config=get_config("tiny", class_head="zero_shot", num_classes=3),
            ...                       vocab_size=16, pad_token_id=0, bos_token_id=1, eos_token_id=2)
            >>> model.set_class_embeddings(torch.randn(5, 512))
            >>> model.cfg.num_classes, tuple(model.class_head.weight.shape)
            (5, (512, 6))
        """
        if self.cfg.class_head != "zero_shot":
            raise ValueError(f"config {self.cfg.name!r} has a {self.cfg.class_head} class head; only the "
                             "zero-shot head reads class-name embeddings")
        self.class_head.set_class_embeddings(class_embeddings)
        self.cfg = replace(self.cfg, num_classes=len(class_embeddings))

    def detector_parameters(self) -> list[nn.Parameter]:
        """Everything but the caption head (frozen in the second training stage)."""
        head = {id(p) for p in self.caption_head.parameters()}
        return [p for p in self.parameters() if id(p) not in head]

    def forward(self, clips: torch.Tensor, clip_features: torch.Tensor | None = None) -> ClipOutput:
        """``clips``: (B, T, 3, H, W), H and W multiples of 32: floats in [0, 1], or for
        official configurations frames already normalised and zero-padded (see
        ``official.preprocess``). ``clip_features``: CLIP image features, which the
        zero-shot class head reads: the clip's per-frame (T, E), or (B, F, E) per clip."""
        b, t = clips.shape[:2]
        features = None
        if self.cfg.official:
            features = self.pixel_decoder.backbone_features(clips.flatten(0, 1))
            levels, mask_features = self.pixel_decoder.decode(features)
        else:
            levels, mask_features = self.pixel_decoder(clips.flatten(0, 1))
        levels = [x.view(b, t, *x.shape[1:]) for x in levels]
        if mask_features is not None:
            mask_features = mask_features.view(b, t, *mask_features.shape[1:])
        box_head = self.box_head if self.cfg.mode == "box" else None
        outs = self.decoder(levels, mask_features, box_head=box_head)
        if self.cfg.class_head == "zero_shot":
            if clip_features is None:
                raise ValueError("the zero-shot class head needs the clip's CLIP image features")
            classify = lambda q: self.class_head(q, clip_features)  # noqa: E731
        else:
            classify = self.class_head
        layers = [
            LayerPrediction(
                class_logits=classify(o.queries),
                objectness=self.objectness_head(o.queries),
                masks=o.masks,
                boxes=o.boxes if o.boxes is not None or self.box_head is None
                else self.box_head(o.queries, t, o.masks),
            )
            for o in outs
        ]
        last = layers[-1]
        class_logits = last.class_logits[..., :-1] if self.cfg.no_class_column else last.class_logits
        return ClipOutput(layers=layers, queries=outs[-1].queries, raw_queries=outs[-1].raw_queries,
                          scores=clip_score(class_logits, last.objectness), clips=clips,
                          features=features, levels=levels, mask_features=mask_features)

    def caption_inputs(self, out: ClipOutput, batch_index: torch.Tensor, query_index: torch.Tensor, *,
                       normalised: bool | None = None) -> torch.Tensor:
        """Q-Former outputs for the selected (batch element, query) pairs, from the decoder's
        output after its final LayerNorm (``normalised``) or before it; by default as
        ``caption_query`` says (official models: before it, as their clip-level training)."""
        if normalised is None:
            normalised = self.cfg.caption_query == "normalised" and not self.cfg.official
        if self.cfg.official:
            return self._official_caption_inputs(out, batch_index, query_index, normalised=normalised)
        queries = out.queries if normalised else out.raw_queries
        masks = out.layers[-1].masks[batch_index, query_index].detach()
        used, position = torch.unique(batch_index, return_inverse=True)
        features = self.caption_head.image_features(out.clips[used])[position]
        return self.caption_head.encode(queries[batch_index, query_index], masks, features)

    def _official_caption_inputs(self, out: ClipOutput, batch_index: torch.Tensor, query_index: torch.Tensor, *,
                                 normalised: bool) -> torch.Tensor:
        """Official training (``Blip2OPTVideo.forward``): each clip is read at one random
        frame, shared by its objects; an object's Q-Former reads that frame's EVA features
        through its predicted box or mask there (detached)."""
        queries = out.queries if normalised else out.raw_queries
        last = out.layers[-1]
        regions = (last.boxes if self.cfg.mode == "box" else last.masks).detach()
        frames: dict[int, tuple[int, torch.Tensor]] = {}
        encoded = []
        for b, q in zip(batch_index.tolist(), query_index.tolist()):
            if b not in frames:
                frame = int(torch.randint(0, out.clips.shape[1], (1,)))
                frames[b] = (frame, self.caption_head.image_features(out.clips[b, frame])[1])
            frame, features = frames[b]
            encoded.append(self.caption_head.encode(features, regions[b, q, frame], queries[b, q]))
        return torch.cat(encoded)

    def video_caption_loss(self, out: ClipOutput, targets: list[ClipTargets],
                           matches: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor | None:
        """Video-level language-modelling loss (paper section 3.3): the clips of ``out`` are
        one video's; each captioned ground-truth track is read from the queries matched to
        it in the clips where it is present, their Q-Former outputs averaged with the clip
        scores as weights (``aggregation_plan``, as at inference), and captioned once."""
        pairs: dict[int, list[tuple[int, int]]] = defaultdict(list)
        captions: dict[int, list[int]] = {}
        for b, ((qi, ti), tgt) in enumerate(zip(matches, targets)):
            for q, k in zip(qi.tolist(), ti.tolist()):
                if tgt.caption_ids[k] and bool(tgt.box_valid[k].any()):
                    track = int(tgt.track_ids[k])
                    pairs[track].append((b, q))
                    captions[track] = tgt.caption_ids[k]
        if not pairs:
            return None
        device = out.queries.device
        flat = [pair for track in pairs for pair in pairs[track]]
        b_idx = torch.tensor([b for b, _ in flat], device=device)
        q_idx = torch.tensor([q for _, q in flat], device=device)
        # Official video-level training reads the normalised queries, as its inference.
        encoded = self.caption_inputs(out, b_idx, q_idx, normalised=True if self.cfg.official else None)
        scores = out.scores[b_idx, q_idx].detach().float().cpu()
        prefixes, start = [], 0
        for track in pairs:
            n = len(pairs[track])
            chosen, weights = aggregation_plan(scores[start:start + n], t_agg=self.cfg.t_agg)
            picked = encoded[start:start + n][chosen.to(device)]
            prefixes.append((weights.to(device, picked.dtype)[:, None, None] * picked).sum(0))
            start += n
        return self.caption_head.loss(torch.stack(prefixes), [captions[t] for t in pairs])

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
