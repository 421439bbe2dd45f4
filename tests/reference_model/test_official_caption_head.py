"""The official CaptionFormer captioning head against the official code's golden bundles.

The head runs on the golden inputs only (preprocessed frames, the per-clip queries, boxes or
masks and scores S reordered into tracks), independently of our detector; every stage is
compared with the official intermediates and every caption's token ids must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F
from transformers import OPTConfig, OPTForCausalLM

from reference_model.caption_head import OfficialCaptionHead
from reference_model.generation import BeamSearch
from reference_model.golden import config_from_bundle
from reference_model.model import official_caption_head

TOL = 1e-5


def _load(path: Path):
    return torch.load(path, weights_only=True)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return (a.float() - b.float()).abs().max().item()


def test_golden_captions(golden_bundle: Path):
    config = json.loads((golden_bundle / "config.json").read_text())
    head = official_caption_head(config_from_bundle(config)).eval()
    head.load_state_dict(head.official_state_dict(_load(golden_bundle / "state_dict.pt")))
    out = _load(golden_bundle / "outputs.pt")
    order = out["track_permutations"]  # track j of clip i is query order[i, j]
    regions = "pred_boxes" if config["mode"] == "box" else "pred_masks"
    trace = []
    torch.manual_seed(config["seeds"]["forward_global_torch_seed"])
    captions = head.caption_tracks(
        out["images_tensor"], frame_ranges=[tuple(c["frame_range"].tolist()) for c in out["clips"]],
        embeddings=[c["pred_embds"][0][order[i]] for i, c in enumerate(out["clips"])],
        regions=[c[regions][0][order[i]] for i, c in enumerate(out["clips"])],
        scores=out["clip_scores_S"], trace=trace)

    captioned = [j for j, ids in enumerate(captions) if ids is not None]
    assert captioned == out["captioned_query_ids"].tolist()
    assert [r.track for r in trace] == captioned
    # lvvis: one frame drawn per caption in its best clip, as the official global-RNG draws.
    draws = [call.frame - int(out["clips"][call.clip]["frame_range"][0]) for r in trace for call in r.calls]
    if out["randint_calls"]:
        assert draws == [int(c["result"]) for c in out["randint_calls"]]
    worst: dict[str, float] = {}
    for record, golden in zip(trace, out["captions"]):
        assert golden["query_id"] == record.track
        assert golden["fn"] == ("generate_video" if head.aggregate else "generate")
        mask = torch.stack([call.attention_mask for call in record.calls])
        assert torch.equal(mask, golden["qformer_encoder_attention_mask"]), record.track
        assert torch.equal(record.token_ids, golden["output_ids"]), record.track
        assert torch.equal(captions[record.track], golden["output_ids"][0])
        stages = {"opt_inputs_embeds": (record.lm_inputs, golden["opt_inputs_embeds"])}
        if "aggregation_scores" in golden:
            stages["aggregation_scores"] = (record.clip_scores, golden["aggregation_scores"])
        if "qformer_query_embeds" in golden:
            stages["qformer_query_embeds"] = (record.calls[0].query_embeds, golden["qformer_query_embeds"])
            stages["qformer_last_hidden_state"] = (torch.stack([c.output for c in record.calls]),
                                                   golden["qformer_last_hidden_state"])
            stages["eva_input_first"] = (record.calls[0].image, golden["eva_input_first"])
            unique = golden["eva_ln_vision_output_unique"][golden["qformer_call_to_eva_unique"]]
            stages["eva_ln_vision_output"] = (torch.stack([c.image_features for c in record.calls]), unique)
        for name, (ours, theirs) in stages.items():
            worst[name] = max(worst.get(name, 0.0), _max_diff(ours, theirs))
    assert set(worst) >= {"opt_inputs_embeds", "qformer_query_embeds", "qformer_last_hidden_state",
                          "eva_input_first", "eva_ln_vision_output"}
    assert max(worst.values()) <= TOL, worst


def test_score_threshold_skips_tracks():
    head = _tiny_head(box_mode=True, aggregate=False)
    scores = torch.tensor([[0.2, 0.3], [0.1, 0.29]])
    captions = head.caption_tracks(torch.randn(2, 3, 32, 32), frame_ranges=[(0, 1), (1, 2)],
                                   embeddings=[torch.randn(2, 16)] * 2, regions=[torch.rand(2, 1, 4)] * 2,
                                   scores=scores)
    assert captions[0] is not None and captions[1] is None


def test_box_and_mask_attention_masks():
    head = _tiny_head(box_mode=True, aggregate=False)  # 2 x 2 patch grid
    # x from cell 0 to 1 (exclusive), y from cell 0 to 1: one cell inside; last column always True.
    assert head.attention_mask(torch.tensor([0.1, 0.2, 0.6, 0.7])).tolist() == [[False, True, True, True, True]]
    head.box_mode = False
    logits = torch.tensor([[4.0, -4.0], [-4.0, -4.0]])  # grid == mask size: the resize keeps it
    assert head.attention_mask(logits).tolist() == [[False, True, True, True, True]]


def _tiny_head(*, box_mode: bool, aggregate: bool) -> OfficialCaptionHead:
    torch.manual_seed(0)
    return OfficialCaptionHead(
        box_mode=box_mode, aggregate=aggregate, object_dim=16, num_query_tokens=4,
        generation=BeamSearch(max_length=5),
        vision_kwargs=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=28, patch_size=14),
        qformer_kwargs=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            encoder_hidden_size=32),
        lm_kwargs=dict(vocab_size=50272, hidden_size=8, num_hidden_layers=1, ffn_dim=16, num_attention_heads=2,
                       word_embed_proj_dim=8)).eval()


# ---------------------------------------------------------------------------------------------
# Keys: the full-size manifests map onto the full-size head.

def _manifest(golden_root: Path, name: str) -> dict:
    return json.loads((golden_root / f"manifest_{name}.json").read_text())


def _fake_official(manifest: dict) -> dict[str, torch.Tensor]:
    dtypes = {"float32": torch.float32, "float16": torch.float16, "int64": torch.int64}
    return {k: torch.empty(v["shape"], dtype=dtypes[v["dtype"]], device="meta")
            for k, v in manifest["keys"].items() if k.startswith("captioning_head.")}


@pytest.mark.parametrize("name", ["vidstg_tempagg", "lvvis"])
def test_full_size_manifest_maps(golden_root: Path, name: str):
    official = _fake_official(_manifest(golden_root, name))
    with torch.device("meta"):
        head = OfficialCaptionHead(box_mode=name != "lvvis", aggregate=name != "lvvis")
    ours = head.state_dict()
    mapped = head.official_state_dict(official)
    assert set(mapped) == set(ours)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in ours.items()}

    # EVA ViT-g/14 at 364 px, BERT-base Q-Former (cross-attention every 2nd layer), OPT-2.7B.
    vision, qformer, lm = head.vision.config, head.qformer.config, head.lm.config
    assert (vision.hidden_size, vision.num_hidden_layers, vision.num_attention_heads, vision.patch_size,
            vision.image_size) == (1408, 39, 16, 14, 364)
    assert vision.intermediate_size == int(1408 * 4.3637)
    assert (qformer.hidden_size, qformer.num_hidden_layers, qformer.num_attention_heads,
            qformer.intermediate_size, qformer.encoder_hidden_size) == (768, 12, 12, 3072, 1408)
    assert [hasattr(layer, "crossattention") for layer in head.qformer.encoder.layer] == [True, False] * 6
    assert (lm.hidden_size, lm.num_hidden_layers, lm.ffn_dim, lm.num_attention_heads,
            lm.vocab_size) == (2560, 32, 10240, 32, 50272)
    # The manifests (the official model's state_dict) hold the EVA and OPT weights, OPT in fp16.
    blocks = [k for k in official if k.startswith("captioning_head.visual_encoder.blocks.")]
    assert len(blocks) == 39 * 13  # 13 tensors per EVA block
    assert all(v.dtype == torch.float16 for k, v in official.items() if k.startswith("captioning_head.opt_model."))


def test_mapping_errors_and_external_parts(golden_root: Path):
    official = _fake_official(_manifest(golden_root, "vidstg_tempagg"))
    with torch.device("meta"):
        head = OfficialCaptionHead(box_mode=True, aggregate=True)
    without = {k: v for k, v in official.items()
               if not k.startswith(("captioning_head.visual_encoder.", "captioning_head.opt_model."))}
    with pytest.raises(ValueError, match=r"not produced: \['lm\.lm_head\.weight'"):
        head.official_state_dict(without)
    mapped = head.official_state_dict(without, external=("eva", "opt"))
    assert "vision.post_layernorm.weight" in mapped and not any(k.startswith("lm.") for k in mapped)
    extra = dict(official, **{"captioning_head.Qformer.bert.encoder.layer.0.output.dense.weight": torch.empty(1)})
    with pytest.raises(ValueError, match=r"not consumed: \['captioning_head\.Qformer\.bert\.encoder\.layer\.0\.output"):
        head.official_state_dict(extra)


# ---------------------------------------------------------------------------------------------
# External weights: LAVIS eva_vit_g.pth and a transformers OPT folder.

def test_load_eva_vit_g_file(tmp_path: Path):
    head = _tiny_head(box_mode=True, aggregate=False)  # 28 px, patch 14: a 2 x 2 grid
    width, hidden = 32, 64
    g = torch.Generator().manual_seed(1)
    eva = {"cls_token": torch.randn(1, 1, width, generator=g),
           "pos_embed": torch.randn(1, 1 + 3 * 3, width, generator=g),  # saved at a 3 x 3 grid
           "patch_embed.proj.weight": torch.randn(width, 3, 14, 14, generator=g),
           "patch_embed.proj.bias": torch.randn(width, generator=g),
           "norm.weight": torch.randn(width, generator=g)}  # not part of the encoder: skipped
    shapes = {"norm1.weight": (width,), "norm1.bias": (width,), "attn.q_bias": (width,), "attn.v_bias": (width,),
              "attn.qkv.weight": (3 * width, width), "attn.proj.weight": (width, width), "attn.proj.bias": (width,),
              "norm2.weight": (width,), "norm2.bias": (width,), "mlp.fc1.weight": (hidden, width),
              "mlp.fc1.bias": (hidden,), "mlp.fc2.weight": (width, hidden), "mlp.fc2.bias": (width,)}
    eva.update({f"blocks.0.{k}": torch.randn(s, generator=g) for k, s in shapes.items()})
    torch.save(eva, tmp_path / "eva_vit_g.pth")
    ln_vision = head.vision.post_layernorm.weight.clone()

    assert head.load_eva_vit_g(tmp_path / "eva_vit_g.pth") == ["norm.weight"]
    ours = head.state_dict()
    grid = eva["pos_embed"][:, 1:].reshape(1, 3, 3, width).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(2, 2), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).flatten(1, 2)
    assert torch.equal(ours["vision.embeddings.position_embedding"], torch.cat([eva["pos_embed"][:, :1], grid], 1))
    assert torch.equal(ours["vision.encoder.layers.0.self_attn.qkv.bias"],
                       torch.cat([eva["blocks.0.attn.q_bias"], torch.zeros(width), eva["blocks.0.attn.v_bias"]]))
    assert torch.equal(ours["vision.encoder.layers.0.mlp.fc2.weight"], eva["blocks.0.mlp.fc2.weight"])
    assert torch.equal(ours["vision.post_layernorm.weight"], ln_vision)  # ln_vision comes from the checkpoint

    del eva["blocks.0.attn.v_bias"]
    torch.save(eva, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="qkv.bias"):
        head.load_eva_vit_g(tmp_path / "broken.pth")


def test_load_opt_folder(tmp_path: Path):
    head = _tiny_head(box_mode=True, aggregate=False)
    torch.manual_seed(3)
    opt = OPTForCausalLM(OPTConfig(vocab_size=50272, hidden_size=8, num_hidden_layers=1, ffn_dim=16,
                                   num_attention_heads=2, word_embed_proj_dim=8))
    opt.save_pretrained(tmp_path / "opt")
    head.load_opt(tmp_path / "opt")
    assert head.lm.dtype == torch.float32
    assert all(torch.equal(v, opt.state_dict()[k]) for k, v in head.lm.state_dict().items())
    wide = OPTForCausalLM(OPTConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, ffn_dim=16,
                                    num_attention_heads=2, word_embed_proj_dim=16))
    wide.save_pretrained(tmp_path / "wide")
    with pytest.raises(ValueError, match="projects to 8"):
        head.load_opt(tmp_path / "wide")


# ---------------------------------------------------------------------------------------------
# Beam search: token ids recorded with transformers 4.28.1's generate(inputs_embeds=...) on small
# seeded OPTs whose end token competes (finished beams, min_length, length penalties, 3 beams).

RECORDED_428 = {
    3: [2, 40, 38, 38, 40, 38, 38, 40],
    12: [2, 11],
    13: [2, 2, 8],
    62: [2, 61, 35, 61, 32],
    89: [2, 59, 29],
    100: [2, 45, 25, 45, 25, 45, 20],
    110: [2] + [37] * 19,
    147: [2, 29, 26, 37, 29, 58, 29, 29],
}


@pytest.mark.parametrize("seed", sorted(RECORDED_428))
def test_beam_search_matches_transformers_4_28(seed: int):
    g = torch.Generator().manual_seed(seed)
    lm = OPTForCausalLM(OPTConfig(vocab_size=64, hidden_size=8, num_hidden_layers=2, ffn_dim=16,
                                  num_attention_heads=2, word_embed_proj_dim=8, max_position_embeddings=64)).eval()
    weights = {k: torch.randn(v.shape, generator=g) * (2.0 if "embed_tokens" in k else 0.5)
               for k, v in sorted(lm.state_dict().items())}
    weights["lm_head.weight"] = weights["model.decoder.embed_tokens.weight"]
    prompt = torch.randn(1, 5, 8, generator=g)
    lm.load_state_dict(weights)
    with torch.no_grad():
        first = lm(inputs_embeds=prompt).logits[0, -1]
    eos = int(first.argsort(descending=True)[1 + seed % 4])  # a likely token ends the caption
    search = BeamSearch(num_beams=[5, 3][seed % 2], max_length=[8, 12, 20][seed % 3], min_length=[1, 1, 4, 7][seed % 4],
                        length_penalty=[1.0, 1.0, 0.5, 2.0, 1.0][seed % 5], eos_token_id=eos)
    assert search(lm, prompt)[0].tolist() == RECORDED_428[seed]
