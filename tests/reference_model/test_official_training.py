"""Fine-tuning the official architectures from a converted checkpoint (``train --init
CONVERTED``): the official caption loss, box loss and matching cost by hand, the official
input normalisation, and train -> predict on tiny official models of each mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from benchmark import chota
from benchmark.synthetic import generate
from reference_model.__main__ import main
from reference_model.config import ModelConfig, get_config
from reference_model.matcher import ClipTargets, LayerPrediction, SetCriterion
from reference_model.model import MaskCaptioner


def tiny_official(name: str, **values) -> ModelConfig:
    """An official configuration at toy sizes (same modules and switches)."""
    return get_config(
        name, backbone_kwargs=dict(embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=4),
        pixel_decoder_layers=1, pixel_decoder_ffn=32, hidden_dim=32, num_heads=2, dim_feedforward=32,
        num_queries=6, decoder_layers=2, short_edge=64, max_size=128,
        caption_vision_kwargs=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=2, image_size=28, patch_size=14),
        qformer_hidden=32, qformer_layers=2, qformer_heads=2, qformer_intermediate=64, num_query_tokens=4,
        lm_kwargs=dict(vocab_size=64, hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2,
                       word_embed_proj_dim=16, max_position_embeddings=64, pad_token_id=1, bos_token_id=2,
                       eos_token_id=2),
        max_caption_tokens=12, num_beams=2, max_caption_length=8, top_k_tracks=6, **{"num_points": 256, **values})


def _opt_like_tokenizer(folder: Path, words: set[str]) -> None:
    """A word-level tokenizer with OPT's conventions: BOS "</s>" (id 2) first, "\\n" a token."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "\n": 4}
    vocab |= {w: 5 + i for i, w in enumerate(sorted(words))}
    assert len(vocab) <= 64
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(" ", "removed"),
                                                  pre_tokenizers.Split("\n", "isolated")])
    core.post_processor = processors.TemplateProcessing(single="</s> $A", special_tokens=[("</s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", bos_token="</s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(folder)


def _converted(folder: Path, config: ModelConfig, words: set[str], class_embeddings=None) -> Path:
    """A convert-official folder of a random tiny official model (config.json, model.pt, tokenizer/)."""
    torch.manual_seed(0)
    model = MaskCaptioner(config=config, class_embeddings=class_embeddings)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    torch.save(model.state_dict(), folder / "model.pt")
    _opt_like_tokenizer(folder / "tokenizer", words)
    return folder


# --- losses by hand --------------------------------------------------------------------------

def test_official_caption_loss_is_the_mean_of_per_caption_token_losses():
    config = tiny_official("vln", num_classes=1)
    head = MaskCaptioner(config=config).caption_head.eval()
    torch.manual_seed(1)
    encoded = torch.randn(2, 5, 32)
    captions = [[2, 7, 9, 4], [2, 11, 4]]
    expected = []
    for row, ids in zip(encoded, captions):
        # Independently: transformers' own causal-LM loss with the prefix positions ignored.
        prefix = head.lm_proj(row)[None]
        tokens = torch.tensor([ids])
        inputs = torch.cat([prefix, head.lm.get_input_embeddings()(tokens)], dim=1)
        labels = torch.cat([torch.full((1, 4), -100), tokens], dim=1)  # the last prefix token predicts BOS
        labels = torch.cat([torch.full((1, 1), -100), labels], dim=1)
        expected.append(head.lm(inputs_embeds=inputs, labels=labels).loss)
    got = head.loss(encoded, captions)
    assert got.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


def test_official_box_loss_and_cost_by_hand():
    config = tiny_official("vidstg", num_classes=2)
    crit = SetCriterion(config=config)
    # Two queries, 2 frames, raw (x, y, w, h); one target present in frame 0 only.
    boxes = torch.tensor([[[[0.1, 0.1, 0.2, 0.2], [0.3, 0.3, 0.2, 0.2]],
                           [[0.5, 0.5, 0.4, 0.4], [0.6, 0.6, -0.1, 0.2]]]])
    pred = LayerPrediction(class_logits=torch.zeros(1, 2, 3), objectness=torch.zeros(1, 2, 2), masks=None,
                           boxes=boxes)
    gt_xywh = torch.tensor([[0.1, 0.1, 0.2, 0.2], [0.0, 0.0, 0.0, 0.0]])  # absent in frame 1: all zeros
    gt_cxcywh = torch.stack([gt_xywh[:, 0] + gt_xywh[:, 2] / 2, gt_xywh[:, 1] + gt_xywh[:, 3] / 2,
                             gt_xywh[:, 2], gt_xywh[:, 3]], dim=-1)
    gt_cxcywh[1] = 0
    target = ClipTargets(labels=torch.tensor([1]), masks=torch.zeros(1, 2, 8, 8), boxes=gt_cxcywh[None],
                         box_valid=torch.tensor([[True, False]]), caption_ids=[[]])
    cost = crit.match_cost(pred, 0, target, torch.rand(2, 4, 2))
    # Class: -sqrt(0.5 * 0.5) * 2 for both; boxes: the last frame only (target all zeros), / 2 frames.
    l1_last = boxes[0, :, 1].abs().sum(-1) / 2
    assert torch.allclose(cost[:, 0] - 5 * l1_last + 2 * 0.5, _giou_cost_last(boxes) * 2, atol=1e-5)
    losses = crit.layer_losses(pred, [target], [torch.rand(2, 4, 2)], [(torch.tensor([0]), torch.tensor([0]))])
    assert set(losses) == {"cls", "obj", "l1", "giou"}  # no mask terms in box mode
    # Query 0 against the track: frame 0 exact, frame 1 against the zero box; per track.
    assert losses["l1"].item() == pytest.approx(float(boxes[0, 0, 1].abs().sum()), rel=1e-5)


def _giou_cost_last(boxes):
    from reference_model.losses import box_xywh_to_xyxy, clamp_xyxy, generalized_box_iou

    pred = clamp_xyxy(box_xywh_to_xyxy(boxes[0, :, 1]))
    return (1 - generalized_box_iou(pred, torch.zeros(2, 4))) / 2


def test_official_mask_models_have_no_box_terms():
    config = tiny_official("vln", num_classes=1)
    crit = SetCriterion(config=config)
    pred = LayerPrediction(class_logits=torch.zeros(1, 3, 2), objectness=torch.zeros(1, 3, 2),
                           masks=torch.randn(1, 3, 2, 8, 8), boxes=None)
    target = ClipTargets(labels=torch.tensor([0]), masks=torch.ones(1, 2, 8, 8), boxes=torch.zeros(1, 2, 4),
                         box_valid=torch.ones(1, 2, dtype=torch.bool), caption_ids=[[]])
    total, logged, matches = crit([pred], [target])
    assert set(logged) == {"cls", "obj", "mask_bce", "dice"} and torch.isfinite(total)
    # One class and no federated draw: the class loss is 1.7 x BCE(logit 0, 1) / (B x Q).
    assert logged["cls"] == pytest.approx(1.7 * F.softplus(torch.tensor(0.0)).item() / 3, rel=1e-5)


def test_official_mask_loss_reads_each_frame_at_uncertain_points():
    from reference_model.losses import point_sample_each, uncertain_points

    config = tiny_official("vln", num_classes=1, num_points=64)
    torch.manual_seed(3)
    masks = torch.randn(1, 3, 2, 8, 8)
    gt = (torch.rand(1, 2, 8, 8) > 0.5).float()
    pred = LayerPrediction(class_logits=torch.zeros(1, 3, 2), objectness=torch.zeros(1, 3, 2), masks=masks, boxes=None)
    target = ClipTargets(labels=torch.tensor([0]), masks=gt, boxes=torch.zeros(1, 2, 4),
                         box_valid=torch.ones(1, 2, dtype=torch.bool), caption_ids=[[]])
    matching_points = [torch.rand(2, 4, 2)]
    torch.manual_seed(7)
    losses = SetCriterion(config=config).layer_losses(pred, [target], matching_points,
                                                      [(torch.tensor([1]), torch.tensor([0]))])
    torch.manual_seed(7)
    points = uncertain_points(masks[0, 1], 64)  # query 1's two frame masks, each its own points
    logits, labels = point_sample_each(masks[0, 1], points), point_sample_each(gt[0], points)
    bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(-1)
    probs = logits.sigmoid()
    dice = 1 - (2 * (probs * labels).sum(-1) + 1) / (probs.sum(-1) + labels.sum(-1) + 1)
    # Summed over the track's two frames, divided by the one track.
    assert losses["mask_bce"].item() == pytest.approx(bce.sum().item(), rel=1e-5)
    assert losses["dice"].item() == pytest.approx(dice.sum().item(), rel=1e-5)


# --- train --init CONVERTED -> predict ----------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_sets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("official_data")
    train = generate(num_videos=3, num_frames=4, max_objects=2, seed=0)
    val = generate(num_videos=2, num_frames=4, max_objects=2, seed=1)
    train.save(tmp / "train")
    val.save(tmp / "val")
    words = {w for data in (train, val) for a in data.gt["annotations"] for w in a.get("caption", "").split()}
    return tmp, words


@pytest.mark.parametrize("name", ["vln", "vidstg"])
def test_fine_tune_a_converted_checkpoint_and_predict(name, synthetic_sets, tmp_path, tiny_clip_dir):
    data, words = synthetic_sets
    gt = json.loads((data / "train" / "gt.json").read_text())
    zero_shot = name == "vidstg"
    config = tiny_official(name, num_classes=len(gt["categories"]) if zero_shot else 1)
    converted = _converted(tmp_path / "converted", config, words,
                           class_embeddings=torch.randn(config.num_classes, 512) if zero_shot else None)
    train_args = ["train", "--data", str(data / "train"), "--init", str(converted), "--steps", "2",
                  "--batch-size", "2", "--threads", "1"]
    extra: list[str] = []
    if zero_shot:
        for split in ("train", "val"):
            assert main(["extract-clip-features", "--data", str(data / split), "--clip-model", str(tiny_clip_dir),
                         "--out", str(tmp_path / f"{split}.pt")]) == 0
        extra = ["--clip-features", str(tmp_path / "train.pt")]
    else:
        # VLN's head has one class: the data must have one too (a clear error otherwise).
        assert main([*train_args, "--stage", "detector", "--out", str(tmp_path / "bad")]) == 2
        one = {**gt, "categories": [{"id": 1, "name": "object"}],
               "annotations": [{**a, "category_id": 1} for a in gt["annotations"]]}
        (data / "one").mkdir(exist_ok=True)
        (data / "one" / "gt.json").write_text(json.dumps(one))
        if not (data / "one" / "JPEGImages").exists():
            (data / "one" / "JPEGImages").symlink_to(data / "train" / "JPEGImages")
        train_args[2] = str(data / "one")
    before = torch.load(converted / "model.pt", weights_only=True)
    assert main([*train_args, *extra, "--stage", "detector", "--out", str(tmp_path / "det")]) == 0
    det = torch.load(tmp_path / "det" / "checkpoint.pt", weights_only=False)
    assert det["config"]["official"] and det["step"] == 2
    changed = {k.split(".")[0] for k, v in det["model"].items() if not torch.equal(v.float(), before[k].float())}
    assert "caption_head" not in changed and {"pixel_decoder", "decoder"} <= changed
    logged = [json.loads(line) for line in (tmp_path / "det" / "train_log.jsonl").read_text().splitlines()]
    geometry = {"l1", "giou"} if name == "vidstg" else {"mask_bce", "dice"}
    assert geometry <= set(logged[-1]) and all(torch.isfinite(torch.tensor(v)) for v in logged[-1].values())
    # The caption stage from it: only the caption head moves, OPT (frozen, as officially) does not.
    assert main([*train_args, *extra, "--stage", "caption", "--init", str(tmp_path / "det" / "checkpoint.pt"),
                 "--out", str(tmp_path / "cap")]) == 0
    cap = torch.load(tmp_path / "cap" / "checkpoint.pt", weights_only=False)
    moved = {k for k, v in cap["model"].items() if not torch.equal(v, det["model"][k])}
    assert moved and all(k.startswith("caption_head.") for k in moved)
    assert not any(k.startswith("caption_head.lm.") for k in moved)
    assert "lm" in json.loads((tmp_path / "cap" / "train_log.jsonl").read_text().splitlines()[-1])
    # The fine-tuned checkpoint predicts through the official inference path.
    val = data / "val" if zero_shot else data / "one_val"
    if not zero_shot:
        vgt = json.loads((data / "val" / "gt.json").read_text())
        vgt = {**vgt, "categories": [{"id": 1, "name": "object"}],
               "annotations": [{**a, "category_id": 1} for a in vgt["annotations"]]}
        val.mkdir(exist_ok=True)
        (val / "gt.json").write_text(json.dumps(vgt))
        if not (val / "JPEGImages").exists():
            (val / "JPEGImages").symlink_to(data / "val" / "JPEGImages")
    predict = ["predict", "--checkpoint", str(tmp_path / "cap" / "checkpoint.pt"), "--data", str(val),
               "--out", str(tmp_path / "preds.json"), "--cpu"]
    if zero_shot:
        predict += ["--clip-features", str(tmp_path / "val.pt")]
    assert main(predict) == 0
    records = json.loads((tmp_path / "preds.json").read_text())
    result = chota(val / "gt.json", tmp_path / "preds.json", iou="box" if zero_shot else "mask",
                   caption_metrics=("cider",), score_threshold=0.0)
    assert 0.0 <= result.to_dict()["CHOTA"] <= 1.0
    assert isinstance(records, list)


def test_converted_init_needs_its_tokenizer(synthetic_sets, tmp_path):
    data, words = synthetic_sets
    config = tiny_official("vln", num_classes=1)
    converted = _converted(tmp_path / "converted", config, words)
    import shutil

    shutil.rmtree(converted / "tokenizer")
    assert main(["train", "--data", str(data / "train"), "--init", str(converted), "--steps", "1",
                 "--out", str(tmp_path / "run")]) == 2


def test_fine_tuning_recipe_from_a_converted_checkpoint(synthetic_sets, tmp_path, tiny_clip_dir):
    """vidstg-finetune from a released-architecture checkpoint: the detector stage, then the
    video-level caption stage (aggregated Q-Former outputs through the official head)."""
    from reference_model.recipes import run_recipe

    data, words = synthetic_sets
    gt = json.loads((data / "train" / "gt.json").read_text())
    config = tiny_official("vidstg-tempagg", num_classes=len(gt["categories"]), t_agg=2)
    converted = _converted(tmp_path / "converted", config, words, class_embeddings=torch.randn(config.num_classes, 512))
    assert main(["extract-clip-features", "--data", str(data / "train"), "--clip-model", str(tiny_clip_dir),
                 "--out", str(tmp_path / "train.pt")]) == 0
    last = run_recipe("vidstg-finetune", data={"vidstg": str(data / "train")}, out=tmp_path / "run", init=converted,
                      scale=1e-4, clip_features={"vidstg": str(tmp_path / "train.pt")}, progress=False)
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["config"]["name"] == "vidstg-tempagg" and ckpt["stage"] == "caption"
    record = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert record["config"] == "vidstg-tempagg" and record["class_head"] == "zero_shot"
    done = json.loads((tmp_path / "run" / "caption" / "done.json").read_text())
    assert done["options"]["video_captions"] is True
    det = torch.load(tmp_path / "run" / "detector" / "checkpoint.pt", weights_only=False)["model"]
    moved = {k for k in det if not torch.equal(det[k], ckpt["model"][k])}
    assert moved and all(k.startswith("caption_head.") and not k.startswith("caption_head.lm.") for k in moved)
