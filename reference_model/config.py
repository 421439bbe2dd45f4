"""Model and training configurations: ``tiny`` (trains on 2 CPU cores), ``paper`` (and its
ResNet-50 variant ``paper-r50``), and the official released models ``vidstg-tempagg``,
``vidstg``, ``lvvis``, ``vln``, ``bensmot``.

A configuration is a frozen dataclass so that it can be stored in a checkpoint as a plain
dict and rebuilt exactly. ``paper`` follows MaskCaptioner (arXiv 2510.14904, appendix A.4.3):
Swin-B backbone, 100 queries, hidden 256, 10 decoder layers, 12-layer BLIP-2 Q-Former,
OPT-2.7B, training clips of T=2 and per-dataset inference settings (``PAPER_INFERENCE``).
The official configurations reproduce the released CaptionFormer checkpoints' inference
(GitHub gabfstr/CaptionFormer, ``configs/eval/*.yaml``): they are the same modules with the
switches below set to the official behaviour (``official=True`` marks them).

Example:
    >>> cfg = get_config("tiny")
    >>> cfg.hidden_dim, cfg.num_queries
    (64, 8)
    >>> get_config("paper", num_classes=80).num_classes
    80
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Every size and switch of the model, the losses and the inference."""

    name: str
    num_classes: int
    # Backbone: "resnet" or "swin" plus the keyword arguments of its transformers config.
    backbone_type: str
    backbone_kwargs: dict[str, Any]
    pixel_decoder_layers: int
    hidden_dim: int
    num_queries: int
    decoder_layers: int
    num_heads: int
    dim_feedforward: int
    # Frames are resized so that the short edge has this length (then padded to /32).
    short_edge: int
    # Paper: a 4-layer MLP; the official code uses 2 layers (see README).
    box_head_layers: int = 4
    # Our addition: the box head corrects the box of the query's predicted mask (see README).
    box_head_mask_anchor: bool = False
    # Q-Former (BLIP-2) and language model sizes.
    qformer_hidden: int = 768
    qformer_layers: int = 12
    qformer_heads: int = 12
    qformer_intermediate: int = 3072
    qformer_cross_attention_frequency: int = 2
    num_query_tokens: int = 32
    # The caption head's own image encoder (BLIP-2's ViT): keyword arguments of
    # transformers' Blip2VisionConfig; {} = BLIP-2's EVA ViT-g/14.
    caption_vision_kwargs: dict[str, Any] = field(default_factory=dict)
    freeze_caption_vision: bool = True
    lm_kwargs: dict[str, Any] = field(default_factory=dict)
    freeze_lm: bool = True
    max_caption_tokens: int = 32
    # "inside": Q-Former cross-attends to pixels inside the predicted mask (paper);
    # "outside": the inverted polarity (see README).
    qformer_mask_polarity: str = "inside"
    # "normalised": captioning/tracking use the decoder output after its final LayerNorm;
    # "raw": the residual stream before it (see README).
    caption_query: str = "normalised"
    # Clips and tracking.
    clip_len_train: int = 2
    clip_len_infer: int = 2
    t_match: int = 1
    k_match: int = 1
    t_agg: int = 1
    score_threshold: float = 0.5
    # Losses (paper section 3.3) and point sampling.
    weight_dice: float = 5.0
    weight_mask_bce: float = 5.0
    weight_l1: float = 5.0
    weight_giou: float = 2.0
    weight_cls: float = 2.0
    weight_obj: float = 2.0
    weight_lm: float = 1.0
    no_object_weight: float = 0.1
    num_points: int = 12544
    # --- The released checkpoints' structure and inference (official CaptionFormer). ---
    # True: the official modules' variants below, frames normalised as (x - mean) / std on
    # the 0-255 scale and zero-padded afterwards, the official tracking, captioning and
    # post-processing (reference_model/official.py).
    official: bool = False
    # "mask": a mask branch (mask features, mask head); "box": box-only, the decoder's
    # cross-attention follows each query's box.
    mode: str = "mask"
    # Backbone stages feeding the pixel decoder: res3-res5 (box) or res2-res5 (mask, the
    # res2 level only feeds the mask features).
    backbone_stages: tuple[str, ...] = ("res2", "res3", "res4", "res5")
    pixel_decoder_ffn: int = 1024
    # "normalised" (ours) or "sine3d" (the official 3D sine encoding).
    decoder_position_encoding: str = "normalised"
    # "linear" or "zero_shot" (official LV-VIS / VidSTG: cosine to CLIP text embeddings after
    # a cross-attention to per-frame CLIP image features; trainable in tiny/paper too, with
    # the official classification loss). Official and zero-shot heads have C + 1 columns.
    class_head: str = "linear"
    clip_feature_dim: int = 512
    # Inference (official): short-edge resize capped at max_size on the long edge, PIL bilinear.
    max_size: int = 1333
    # "vote" (memory of t_match tracked clips, top-k_match votes) or "hungarian" (previous clip).
    tracker: str = "vote"
    caption_threshold: float = 0.3
    # Which clips a track's caption reads (MaskCaptioner Table 8): "weighted-mean" of t_agg
    # clips' Q-Former outputs with S / (sum S + 1e-6), their plain "mean", the "best" clip
    # (highest S; one random frame of it) or the "middle" clip of the video.
    caption_mode: str = "weighted-mean"
    num_beams: int = 5
    max_caption_length: int = 30
    presence_threshold: float = 0.2
    hysteresis: tuple[float, float, int] | None = None
    top_k_tracks: int = 50
    per_frame_score_threshold: float = 0.0

    @property
    def no_class_column(self) -> bool:
        """Whether the class logits end with a "no class" column that scores ignore: the
        official heads and the zero-shot head have one."""
        return self.official or self.class_head == "zero_shot"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form stored in checkpoints."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict` (JSON lists become the tuples the fields hold)."""
        data = dict(data)
        for key in ("backbone_stages", "hysteresis"):
            if isinstance(data.get(key), list):
                data[key] = tuple(data[key])
        return cls(**data)


_TINY = ModelConfig(
    name="tiny",
    num_classes=1,
    backbone_type="resnet",
    backbone_kwargs=dict(
        embedding_size=32, hidden_sizes=[32, 64, 96, 128], depths=[1, 1, 1, 1],
        layer_type="basic",
    ),
    pixel_decoder_layers=1,
    hidden_dim=64,
    num_queries=8,
    decoder_layers=3,
    num_heads=4,
    dim_feedforward=128,
    short_edge=64,
    box_head_mask_anchor=True,
    qformer_hidden=64,
    qformer_layers=2,
    qformer_heads=4,
    qformer_intermediate=128,
    qformer_cross_attention_frequency=1,
    num_query_tokens=4,
    caption_vision_kwargs=dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
        image_size=64, patch_size=4,
    ),
    freeze_caption_vision=False,
    lm_kwargs=dict(
        hidden_size=64, num_hidden_layers=2, ffn_dim=128, num_attention_heads=4,
        max_position_embeddings=64, word_embed_proj_dim=64,
    ),
    freeze_lm=False,
    max_caption_tokens=20,
    clip_len_train=2,
    clip_len_infer=2,
    t_match=4,
    k_match=2,
    t_agg=4,
    # Trained for minutes, the shape classifier stays unsure, which lowers S; the paper's
    # t_thresh is a tuned inference setting.
    score_threshold=0.3,
    num_points=2048,
)

# OPT-2.7B (facebook/opt-2.7b config.json) and Swin-B (22k) sizes.
_PAPER = ModelConfig(
    name="paper",
    num_classes=1196,
    backbone_type="swin",
    backbone_kwargs=dict(
        image_size=384, embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
        window_size=12,
    ),
    pixel_decoder_layers=6,
    hidden_dim=256,
    num_queries=100,
    decoder_layers=10,
    num_heads=8,
    dim_feedforward=2048,
    short_edge=480,
    box_head_layers=4,
    lm_kwargs=dict(
        vocab_size=50272, hidden_size=2560, num_hidden_layers=32, ffn_dim=10240,
        num_attention_heads=32, max_position_embeddings=2048, word_embed_proj_dim=2560,
        pad_token_id=1, bos_token_id=2, eos_token_id=2,
    ),
    freeze_lm=True,
    clip_len_train=2,
    clip_len_infer=1,
    t_match=100,
    k_match=7,
    t_agg=32,
)

# The appendix's ResNet-50 variant: the same model with a ResNet-50 backbone (transformers'
# ResNetConfig defaults are ResNet-50; spelled out so that the sizes are visible) and video
# frames resized to a short edge of 360 instead of Swin-B's 480.
_PAPER_R50 = dataclasses.replace(
    _PAPER,
    name="paper-r50",
    backbone_type="resnet",
    backbone_kwargs=dict(
        embedding_size=64, hidden_sizes=[256, 512, 1024, 2048], depths=[3, 4, 6, 3],
        layer_type="bottleneck",
    ),
    short_edge=360,
)

# Inference settings per dataset from the paper's appendix A.4.3 (T, T_match, K_match, T_agg).
PAPER_INFERENCE: dict[str, dict[str, int]] = {
    "lvvis": dict(clip_len_infer=5, t_match=1, k_match=1, t_agg=1),
    "vidstg": dict(clip_len_infer=1, t_match=100, k_match=7, t_agg=32),
    "vln": dict(clip_len_infer=1, t_match=20, k_match=5, t_agg=8),
    "bensmot": dict(clip_len_infer=1, t_match=40, k_match=7, t_agg=8),
}

# The released checkpoints (GitHub gabfstr/CaptionFormer, configs/_base.yaml and
# configs/eval/*.yaml): Swin-B, 100 queries, 10 decoder layers of which 9 run (the official
# code counts the prediction on the learned queries as one), a 6-layer deformable encoder
# with a 1024-wide FFN, EVA ViT-g at 364 px, a BERT-base Q-Former, OPT-2.7B, beam search 5.
_OFFICIAL = dataclasses.replace(
    _PAPER,
    name="official",
    official=True,
    backbone_kwargs=dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12),
    pixel_decoder_layers=6,
    decoder_layers=9,
    box_head_layers=2,
    caption_vision_kwargs=dict(hidden_size=1408, num_hidden_layers=39, num_attention_heads=16,
                               intermediate_size=6144, image_size=364, patch_size=14),
    decoder_position_encoding="sine3d",
    clip_len_infer=1,
    max_caption_tokens=32,
)


def _official(name: str, **values: Any) -> ModelConfig:
    return dataclasses.replace(_OFFICIAL, name=name, **values)


_BOX = dict(mode="box", backbone_stages=("res3", "res4", "res5"))
_OFFICIAL_CONFIGS = {
    "vidstg-tempagg": _official("vidstg-tempagg", num_classes=80, class_head="zero_shot", **_BOX,
                                t_match=100, k_match=7, t_agg=32, hysteresis=(0.4, 0.85, 3)),
    "vidstg": _official("vidstg", num_classes=80, class_head="zero_shot", **_BOX, t_match=100,
                        k_match=7, caption_mode="best", hysteresis=(0.4, 0.85, 3)),
    "lvvis": _official("lvvis", num_classes=1196, class_head="zero_shot", clip_len_infer=5,
                       tracker="hungarian", caption_mode="best", per_frame_score_threshold=0.5),
    "vln": _official("vln", num_classes=1, t_match=20, k_match=5, t_agg=8, hysteresis=(0.3, 0.9, 5)),
    "bensmot": _official("bensmot", num_classes=1, **_BOX, t_match=40, k_match=7, t_agg=8,
                         hysteresis=(0.3, 0.8, 5), max_caption_tokens=200, max_caption_length=200),
}

CONFIGS: dict[str, ModelConfig] = {"tiny": _TINY, "paper": _PAPER, "paper-r50": _PAPER_R50,
                                   **_OFFICIAL_CONFIGS}


def get_config(name: str, *, dataset: str | None = None, **overrides: Any) -> ModelConfig:
    """Return the named configuration, with the paper's per-dataset inference settings and
    any field overridden.

    Example:
        >>> get_config("paper", dataset="vln").t_match
        20
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}")
    values = CONFIGS[name].to_dict()
    if dataset is not None:
        if dataset not in PAPER_INFERENCE:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(PAPER_INFERENCE)}")
        values.update(PAPER_INFERENCE[dataset])
    unknown = set(overrides) - set(values)
    if unknown:
        raise ValueError(f"unknown config fields: {sorted(unknown)}")
    values.update(overrides)
    return ModelConfig.from_dict(values)
