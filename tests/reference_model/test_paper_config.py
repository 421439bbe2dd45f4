"""The ``paper`` configuration builds with the paper's sizes (random weights, nothing downloaded).

OPT-2.7B and the EVA ViT-g would need about 14 GB in float32, so the full model is built on the
meta device (shapes and parameter counts only); the detector and Q-Former run for real with a
small stand-in language model and image encoder.
"""

from __future__ import annotations

import time

import pytest
import torch

from reference_model.config import PAPER_INFERENCE, get_config
from reference_model.model import MaskCaptioner


def test_paper_sizes_on_meta_device():
    cfg = get_config("paper")
    with torch.device("meta"):
        model = MaskCaptioner(config=cfg, vocab_size=50272, pad_token_id=1, bos_token_id=2, eos_token_id=2)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # facebook/opt-2.7b: 2.65 B parameters (the "2.7B" of its name)
    assert count(model.caption_head.lm) == pytest.approx(2.65e9, rel=0.01)
    # Swin-B: about 87 M parameters without its classification head
    assert count(model.pixel_decoder.module.encoder) == pytest.approx(87e6, rel=0.03)
    assert model.decoder.query_feat.weight.shape == (100, 256)
    assert len(model.decoder.layers) == 10
    assert len(model.caption_head.qformer.encoder.layer) == 12
    assert model.caption_head.query_tokens.shape == (1, 32, 768)
    assert model.caption_head.lm_proj.weight.shape == (2560, 768)
    # BLIP-2's frozen EVA ViT-g/14 (39 layers, width 1408): about 1 B parameters
    vision = model.caption_head.vision
    assert 0.9e9 < count(vision) < 1.1e9 and vision.config.patch_size == 14
    assert model.caption_head.qformer.config.encoder_hidden_size == 1408
    assert not any(p.requires_grad for p in vision.parameters()), "the ViT is frozen"
    assert len(model.box_head.mlp.layers) == 4
    assert model.caption_head.lm.config.num_hidden_layers == 32
    assert not any(p.requires_grad for p in model.caption_head.lm.parameters()), "OPT is frozen"


def test_paper_inference_settings_per_dataset():
    assert {k: (v["clip_len_infer"], v["t_match"], v["k_match"], v["t_agg"]) for k, v in PAPER_INFERENCE.items()} == {
        "lvvis": (5, 1, 1, 1), "vidstg": (1, 100, 7, 32), "vln": (1, 20, 5, 8), "bensmot": (1, 40, 7, 8)}
    cfg = get_config("paper", dataset="vidstg")
    assert (cfg.clip_len_train, cfg.t_match, cfg.k_match, cfg.t_agg) == (2, 100, 7, 32)


def test_paper_detector_and_qformer_forward_shapes():
    """Real random weights for Swin-B, the pixel decoder, 10 decoder layers and the Q-Former:
    about 7 s on an idle 2-core machine (up to a minute on a busy one)."""
    small_lm = dict(hidden_size=64, num_hidden_layers=1, ffn_dim=64, num_attention_heads=2,
                    max_position_embeddings=64, word_embed_proj_dim=64)
    small_vit = dict(hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                     image_size=224, patch_size=16)
    cfg = get_config("paper", lm_kwargs=small_lm, caption_vision_kwargs=small_vit)
    torch.manual_seed(0)
    start = time.time()
    model = MaskCaptioner(config=cfg, vocab_size=100, pad_token_id=0, bos_token_id=1, eos_token_id=2).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 2, 3, 96, 128))
        last = out.layers[-1]
        assert last.class_logits.shape == (1, 100, 1196)
        assert last.objectness.shape == (1, 100, 2)
        assert last.masks.shape == (1, 100, 2, 24, 32)
        assert last.boxes.shape == (1, 100, 2, 4)
        assert len(out.layers) == 11  # learned queries + 10 layers, all supervised
        assert out.scores.shape == (1, 100)
        encoded = model.caption_inputs(out, torch.tensor([0, 0]), torch.tensor([3, 7]))
        assert encoded.shape == (2, 33, 768)
    assert time.time() - start < 300
