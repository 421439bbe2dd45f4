"""Backbone and pixel decoder: transformers' Swin / ResNet and Mask2Former pixel decoder.

The backbone (ResNet for ``tiny``, Swin for ``paper``) is built from a transformers config;
the pixel decoder is Mask2Former's multi-scale deformable-attention encoder. It returns three
feature maps for the transformer decoder's masked cross-attention (strides 32, 16, 8) and
the per-pixel mask features at stride 4.

:class:`OfficialPixelDecoder` is the same pair laid out like the released CaptionFormer
checkpoints (detectron2 ``D2SwinTransformer`` + ``MSDeformAttnPixelDecoder``): it takes
frames that are already normalised and padded, has a 1024-wide encoder FFN, an optional
mask branch (box-only checkpoints have none) and loads the official weights through
:meth:`OfficialPixelDecoder.official_state_dict`.

Example:
    >>> import torch
    >>> from reference_model.config import get_config
    >>> pd = PixelDecoder(config=get_config("tiny"))
    >>> levels, mask_features = pd(torch.zeros(2, 3, 64, 64))
    >>> [tuple(x.shape[-2:]) for x in levels], tuple(mask_features.shape)
    ([(2, 2), (4, 4), (8, 8)], (2, 64, 16, 16))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import Mask2FormerConfig, ResNetConfig, SwinBackbone, SwinConfig
from transformers.models.mask2former.modeling_mask2former import (
    Mask2FormerPixelDecoder, Mask2FormerPixelLevelModule, Mask2FormerPreTrainedModel,
)

from reference_model.config import ModelConfig
from reference_model.official_keys import map_official

_BACKBONE_CONFIGS = {"resnet": ResNetConfig, "swin": SwinConfig}
_STAGES = ["stage1", "stage2", "stage3", "stage4"]
# ImageNet statistics: the pretrained backbones expect them, random ones do not mind.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def normalise_images(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [0, 1] -> ImageNet-normalised and contiguous (Mask2Former's deformable
    attention misbehaves on channels-last input)."""
    mean = images.new_tensor(_MEAN).view(1, 3, 1, 1)
    std = images.new_tensor(_STD).view(1, 3, 1, 1)
    return ((images - mean) / std).contiguous()


def mask2former_config(config: ModelConfig) -> Mask2FormerConfig:
    """The transformers Mask2Former config matching ``config`` (pixel-level part only)."""
    backbone_cls = _BACKBONE_CONFIGS[config.backbone_type]
    backbone = backbone_cls(out_features=_STAGES, **config.backbone_kwargs)
    # transformers warns that only Swin is "supported"; ResNet works with this module.
    logging.getLogger("transformers.models.mask2former.configuration_mask2former").setLevel(logging.ERROR)
    return Mask2FormerConfig(
        backbone_config=backbone,
        use_pretrained_backbone=False,
        feature_size=config.hidden_dim,
        mask_feature_size=config.hidden_dim,
        hidden_dim=config.hidden_dim,
        encoder_layers=config.pixel_decoder_layers,
        encoder_feedforward_dim=config.dim_feedforward,
        num_attention_heads=config.num_heads,
    )


def init_pixel_decoder(decoder: Mask2FormerPixelDecoder, m2f_config: Mask2FormerConfig) -> None:
    """Give ``decoder`` transformers' initial weights.

    Built outside a PreTrainedModel, the pixel decoder skips transformers' weight
    initialisation (its level embedding would be uninitialised memory, hence NaNs). The
    backbone is a PreTrainedModel and initialises itself. Children go first so that a
    parent's specific init (deformable attention offsets) is not overwritten.
    """
    initializer = Mask2FormerPreTrainedModel(m2f_config)
    for module in reversed(list(decoder.modules())):
        initializer._init_weights(module)


class PixelDecoder(nn.Module):
    """Image normalisation, backbone and multi-scale pixel decoder."""

    def __init__(self, *, config: ModelConfig) -> None:
        super().__init__()
        m2f_config = mask2former_config(config)
        self.module = Mask2FormerPixelLevelModule(m2f_config)
        init_pixel_decoder(self.module.decoder, m2f_config)

    def load_backbone(self, path: str | Path) -> None:
        """Load pretrained backbone weights from a local transformers folder (no download)."""
        from transformers import AutoBackbone

        pretrained = AutoBackbone.from_pretrained(str(path), local_files_only=True)
        self.module.encoder.load_state_dict(pretrained.state_dict())

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``images``: (N, 3, H, W) floats in [0, 1]; returns (3 levels coarse to fine, mask
        features at stride 4)."""
        out = self.module(normalise_images(images))
        return list(out.decoder_hidden_states), out.decoder_last_hidden_state


# Official key (after its prefix) -> our key (after ours); the first full match wins. A target
# of None consumes the key without loading it; "{}" marks the fused attention projection that
# transformers' Swin splits into q/k/v.
_SWIN_BLOCK = r"layers\.(\d+)\.blocks\.(\d+)\."
_OUR_BLOCK = r"swin.encoder.layers.\1.blocks.\2."
_SWIN_RULES = [
    (r"patch_embed\.proj\.(.+)", r"swin.embeddings.patch_embeddings.projection.\1"),
    (r"patch_embed\.norm\.(.+)", r"swin.embeddings.norm.\1"),
    (_SWIN_BLOCK + r"norm1\.(.+)", _OUR_BLOCK + r"layernorm_before.\3"),
    (_SWIN_BLOCK + r"norm2\.(.+)", _OUR_BLOCK + r"layernorm_after.\3"),
    (_SWIN_BLOCK + r"attn\.qkv\.(.+)", _OUR_BLOCK + r"attention.{}_proj.\3"),
    (_SWIN_BLOCK + r"attn\.proj\.(.+)", _OUR_BLOCK + r"attention.o_proj.\3"),
    (_SWIN_BLOCK + r"attn\.relative_position_bias_table",
     _OUR_BLOCK + r"attention.relative_position_bias.relative_position_bias_table"),
    # A function of the window size, which transformers recomputes (a non-persistent buffer).
    (_SWIN_BLOCK + r"attn\.relative_position_index", None),
    (_SWIN_BLOCK + r"mlp\.(.+)", _OUR_BLOCK + r"mlp.\3"),
    (r"layers\.(\d+)\.downsample\.(.+)", r"swin.encoder.layers.\1.downsample.\2"),
    # The per-output LayerNorms: official norm{i} normalises res{i+2}, transformers' stage{i+1}.
    *[(rf"norm{i}\.(.+)", rf"hidden_states_norms.stage{i + 1}.\1") for i in range(4)],
]
_ENCODER_LAYER = r"transformer\.encoder\.layers\.(\d+)\."
_PIXEL_DECODER_RULES = [
    (r"input_proj\.(.+)", r"input_projections.\1"),
    (r"transformer\.level_embed", "level_embed"),
    (_ENCODER_LAYER + r"self_attn\.(.+)", r"encoder.layers.\1.self_attn.\2"),
    (_ENCODER_LAYER + r"norm1\.(.+)", r"encoder.layers.\1.self_attn_layer_norm.\2"),
    (_ENCODER_LAYER + r"linear1\.(.+)", r"encoder.layers.\1.fc1.\2"),
    (_ENCODER_LAYER + r"linear2\.(.+)", r"encoder.layers.\1.fc2.\2"),
    (_ENCODER_LAYER + r"norm2\.(.+)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"mask_features\.(.+)", r"mask_projection.\1"),
    # detectron2's Conv2d holds its GroupNorm as ``.norm``; transformers uses Sequential(conv, norm).
    (r"(adapter_\d+|layer_\d+)\.weight", r"\1.0.weight"),
    (r"(adapter_\d+|layer_\d+)\.norm\.(.+)", r"\1.1.\2"),
]
# Official prefix -> (our prefix, rules).
_OFFICIAL_PREFIXES = {
    "backbone.": ("backbone.", _SWIN_RULES),
    "sem_seg_head.pixel_decoder.": ("decoder.", _PIXEL_DECODER_RULES),
}
_RES_STAGES = ("res2", "res3", "res4", "res5")


class OfficialPixelDecoder(nn.Module):
    """Swin backbone + deformable pixel decoder of the released CaptionFormer checkpoints.

    ``stages`` are the backbone outputs (detectron2 names): ``("res2", "res3", "res4",
    "res5")`` for the mask checkpoints, ``("res3", "res4", "res5")`` for the box-only ones.
    The deformable encoder always reads res3-res5; with ``mask_branch`` the decoder adds the
    FPN step down to stride 4 (from the finest stage below res3) and the 1x1 mask-feature
    convolution. The official Swin's ``PRETRAIN_IMG_SIZE`` only sizes an absolute position
    embedding that the configs switch off (``APE: False``), so it is no option here.

    Example:
        >>> pd = OfficialPixelDecoder(embed_dim=24, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8),
        ...                           window_size=7, stages=("res2", "res3", "res4", "res5"),
        ...                           encoder_layers=1, mask_branch=True)
        >>> levels, mask_features = pd(torch.zeros(1, 3, 64, 96))
        >>> [tuple(x.shape) for x in levels], tuple(mask_features.shape)
        ([(1, 256, 2, 3), (1, 256, 4, 6), (1, 256, 8, 12)], (1, 256, 16, 24))
        >>> {k: tuple(v.shape) for k, v in pd.backbone_features(torch.zeros(1, 3, 64, 96)).items()}
        {'res2': (1, 24, 16, 24), 'res3': (1, 48, 8, 12), 'res4': (1, 96, 4, 6), 'res5': (1, 192, 2, 3)}
    """

    def __init__(self, *, embed_dim: int, depths: Sequence[int], num_heads: Sequence[int],
                 window_size: int, stages: Sequence[str], encoder_layers: int, mask_branch: bool,
                 hidden_dim: int = 256, encoder_heads: int = 8, encoder_ffn_dim: int = 1024) -> None:
        super().__init__()
        if tuple(stages) not in (_RES_STAGES, _RES_STAGES[1:]):
            raise ValueError(f"stages must be res2-res5 or res3-res5, got {stages}")
        self.stages = tuple(stages)
        self.mask_branch = mask_branch
        swin_config = SwinConfig(
            embed_dim=embed_dim, depths=list(depths), num_heads=list(num_heads),
            window_size=window_size, drop_path_rate=0.0, attn_implementation="eager",
            out_features=[f"stage{_RES_STAGES.index(s) + 1}" for s in self.stages],
        )
        self.backbone = SwinBackbone(swin_config)
        # SwinModel's final LayerNorm feeds only its pooled output, which the backbone drops;
        # the official Swin has no such weight.
        self.backbone.swin.layernorm = nn.Identity()
        # The decoder reads no backbone setting from this config (sharing swin_config would
        # let transformers reset its attention implementation).
        m2f_config = Mask2FormerConfig(
            feature_size=hidden_dim, mask_feature_size=hidden_dim, encoder_layers=encoder_layers,
            encoder_feedforward_dim=encoder_ffn_dim, num_attention_heads=encoder_heads,
            # The FPN steps run from the encoder's finest stride (8) down to common_stride:
            # none for the box-only decoder.
            common_stride=4 if mask_branch else 8,
        )
        self.decoder = Mask2FormerPixelDecoder(m2f_config, feature_channels=self.backbone.channels)
        if not mask_branch:
            # Box-only checkpoints have no mask-feature convolution; forward returns None instead.
            self.decoder.mask_projection = nn.Identity()
        init_pixel_decoder(self.decoder, m2f_config)

    def backbone_features(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """``images``: (N, 3, H, W) normalised, padded to /32 -> {"res2": (N, C, H/4, W/4), ...}."""
        return dict(zip(self.stages, self.backbone(images).feature_maps))

    def decode(self, features: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Backbone features -> (3 maps at strides 32, 16, 8; mask features at stride 4 or None)."""
        out = self.decoder([features[s] for s in self.stages])
        return list(out.multi_scale_features), out.mask_features if self.mask_branch else None

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """``images``: (N, 3, H, W) normalised with the official pixel statistics and zero-padded
        to a multiple of 32; returns 3 (N, 256, h, w) maps coarse to fine and the mask
        features (N, 256, H/4, W/4), or None without the mask branch."""
        return self.decode(self.backbone_features(images))

    def official_state_dict(self, official: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Our state dict from the full official one (its ``backbone.`` and
        ``sem_seg_head.pixel_decoder.`` entries; other keys are ignored).

        Raises ValueError listing every official key under those prefixes that was not used,
        every key of ours that was not produced and every shape that differs.
        """
        return map_official(official, _OFFICIAL_PREFIXES, self.state_dict(), what="backbone / pixel decoder")
