"""Backbone and pixel decoder: transformers' Mask2Former pixel-level module.

The backbone (ResNet for ``tiny``, Swin for ``paper``) is built from a transformers config;
the pixel decoder is Mask2Former's multi-scale deformable-attention encoder. It returns three
feature maps for the transformer decoder's masked cross-attention (strides 32, 16, 8) and
the per-pixel mask features at stride 4.

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
from pathlib import Path

import torch
from torch import nn
from transformers import Mask2FormerConfig, ResNetConfig, SwinConfig
from transformers.models.mask2former.modeling_mask2former import (
    Mask2FormerPixelLevelModule, Mask2FormerPreTrainedModel,
)

from reference_model.config import ModelConfig

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


class PixelDecoder(nn.Module):
    """Image normalisation, backbone and multi-scale pixel decoder."""

    def __init__(self, *, config: ModelConfig) -> None:
        super().__init__()
        m2f_config = mask2former_config(config)
        self.module = Mask2FormerPixelLevelModule(m2f_config)
        # Built outside a PreTrainedModel, the pixel decoder skips transformers' weight
        # initialisation (its level embedding would be uninitialised memory, hence NaNs).
        # The backbone is a PreTrainedModel and initialises itself. Children go first so that
        # a parent's specific init (deformable attention offsets) is not overwritten.
        initializer = Mask2FormerPreTrainedModel(m2f_config)
        for module in reversed(list(self.module.decoder.modules())):
            initializer._init_weights(module)

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
