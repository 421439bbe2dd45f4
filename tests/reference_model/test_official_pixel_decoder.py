"""The official-layout backbone and pixel decoder against the official code's golden bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from reference_model.pixel_decoder import OfficialPixelDecoder

TOL = 1e-5


def _sizes(bundle: Path, which: str) -> dict:
    """``which`` = "golden" or "full": the Swin and encoder sizes from the bundle's config.json."""
    shrunk = json.loads((bundle / "config.json").read_text())["shrunk_vs_full"]
    size = {key.removeprefix("MODEL."): value[which] for key, value in shrunk.items()}
    return dict(embed_dim=size["SWIN.EMBED_DIM"], depths=size["SWIN.DEPTHS"],
                num_heads=size["SWIN.NUM_HEADS"], window_size=size["SWIN.WINDOW_SIZE"],
                encoder_layers=size["SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS"])


def _mode_options(bundle: Path) -> dict:
    """Box-only checkpoints read res3-res5 and have no mask branch; mask ones read res2-res5."""
    mask = json.loads((bundle / "config.json").read_text())["mode"] == "mask"
    stages = ("res2", "res3", "res4", "res5") if mask else ("res3", "res4", "res5")
    return dict(stages=stages, mask_branch=mask)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a - b).abs().max().item()


def test_golden_stage_features(golden_bundle: Path):
    model = OfficialPixelDecoder(**_sizes(golden_bundle, "golden"), **_mode_options(golden_bundle)).eval()
    official = torch.load(golden_bundle / "state_dict.pt", weights_only=True)
    model.load_state_dict(model.official_state_dict(official))
    outputs = torch.load(golden_bundle / "outputs.pt", weights_only=True)
    saved = json.loads((golden_bundle / "config.json").read_text())["stage_features_saved_for_clips"]
    assert saved
    for index in saved:
        clip = outputs["clips"][index]
        start, end = clip["frame_range"].tolist()  # a half-open slice of the video's frames
        with torch.no_grad():
            features = model.backbone_features(outputs["images_tensor"][start:end])
            levels, mask_features = model.decode(features)
        assert list(features) == list(clip["backbone"])
        for name, expected in clip["backbone"].items():
            assert _max_diff(features[name], expected) <= TOL, name
        assert len(levels) == len(clip["pixel_decoder_multi_scale"]) == 3
        for level, expected in zip(levels, clip["pixel_decoder_multi_scale"]):
            assert _max_diff(level, expected) <= TOL
        if model.mask_branch:
            assert _max_diff(mask_features, clip["pixel_decoder_mask_features"]) <= TOL
        else:
            assert mask_features is None and "pixel_decoder_mask_features" not in clip


@pytest.mark.parametrize("name", ["vidstg_tempagg", "lvvis"])
def test_full_size_manifest_maps(golden_root: Path, name: str):
    bundle = golden_root / name
    with torch.device("meta"):
        model = OfficialPixelDecoder(**_sizes(bundle, "full"), **_mode_options(bundle))
    manifest = json.loads((golden_root / f"manifest_{name}.json").read_text())["keys"]
    official = {k: torch.empty(v["shape"], device="meta") for k, v in manifest.items()}
    mapped = model.official_state_dict(official)  # raises on any unused, missing or misshapen key
    ours = model.state_dict()
    assert set(mapped) == set(ours)
    assert all(mapped[k].shape == ours[k].shape for k in ours)
    # Full size: Swin-B (24 blocks, 4 fused qkv each split in three) and a 6-layer, 1024-wide encoder.
    assert sum(k.endswith("attention.q_proj.weight") for k in ours) == 24
    assert ours["decoder.encoder.layers.5.fc1.weight"].shape == (1024, 256)


def test_mapping_reports_every_mismatch(golden_root: Path):
    box = golden_root / "vidstg_tempagg"
    model = OfficialPixelDecoder(**_sizes(box, "golden"), **_mode_options(box))
    # The mask checkpoint's extra stage norm and mask branch have no place in the box decoder.
    mask_official = torch.load(golden_root / "lvvis" / "state_dict.pt", weights_only=True)
    with pytest.raises(ValueError) as error:
        model.official_state_dict(mask_official)
    for key in ["backbone.norm0.weight", "sem_seg_head.pixel_decoder.mask_features.weight",
                "sem_seg_head.pixel_decoder.adapter_1.norm.bias",
                "sem_seg_head.pixel_decoder.layer_1.weight"]:
        assert key in str(error.value)
    box_official = torch.load(box / "state_dict.pt", weights_only=True)
    del box_official["backbone.layers.1.blocks.0.attn.qkv.bias"]
    box_official["sem_seg_head.pixel_decoder.transformer.level_embed"] = torch.zeros(4, 256)
    with pytest.raises(ValueError) as error:
        model.official_state_dict(box_official)
    message = str(error.value)
    for part in "qkv":
        assert f"backbone.swin.encoder.layers.1.blocks.0.attention.{part}_proj.bias" in message
    assert "decoder.level_embed: official (4, 256), ours (3, 256)" in message
