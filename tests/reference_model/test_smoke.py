"""End to end on a tiny synthetic set: train a few steps, save, resume, reload, predict, score."""

from __future__ import annotations

import json

import pytest
import torch

from benchmark import chota
from benchmark.io import load_ground_truth, load_predictions
from reference_model.__main__ import main
from reference_model.data import load_source
from reference_model.train import load_checkpoint

DATA = "synthetic:num_videos=2,num_frames=5,height=64,width=64,max_objects=2,seed=3"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--config", "tiny", "--data", DATA, "--out", str(out), "--steps", "2",
                 "--batch-size", "2", "--checkpoint-every", "1"]) == 0
    return out


def test_checkpoint_resume_and_reload(run):
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ckpt["step"] == 2 and ckpt["config"]["num_classes"] == 6
    before = {k: v.clone() for k, v in ckpt["model"].items()}
    assert main(["train", "--config", "tiny", "--data", DATA, "--out", str(run), "--steps", "3",
                 "--batch-size", "2", "--resume"]) == 0
    resumed = torch.load(run / "checkpoint.pt", weights_only=False)
    assert resumed["step"] == 3
    changed = [k for k in before if not torch.equal(before[k], resumed["model"][k])]
    assert changed, "one more step must change the weights"
    model, tokenizer, _ = load_checkpoint(run / "checkpoint.pt")
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in resumed["model"].items())
    assert tokenizer.decode(tokenizer("a red", add_special_tokens=False)["input_ids"]) == "a red"


def test_predict_writes_valid_scorable_predictions(run, tmp_path):
    preds_path = tmp_path / "preds.json"
    # Threshold 0: the barely trained model must still output every track.
    assert main(["predict", "--checkpoint", str(run / "checkpoint.pt"), "--data", DATA,
                 "--out", str(preds_path), "--score-threshold", "0"]) == 0
    preds = json.loads(preds_path.read_text())
    gt_dict = load_source(DATA).gt
    assert preds, "no predictions"
    assert set(preds[0]) == {"image_id", "video_id", "track_id", "category_id", "bbox", "segmentation", "score", "caption"}
    by_track = {}
    for p in preds:
        by_track.setdefault(p["track_id"], set()).add(p["caption"])
        assert p["segmentation"]["size"] == [64, 64] and 0.0 <= p["score"] <= 1.0
        x, y, w, h = p["bbox"]
        assert 0 <= x <= 64 and 0 <= y <= 64 and w >= 0 and h >= 0
    assert all(len(c) == 1 for c in by_track.values()), "one caption per track"
    # 8 query slots per video, 2 videos: at most 16 tracks; each frame at most once per track
    assert len(by_track) <= 16
    assert len({(p["track_id"], p["image_id"]) for p in preds}) == len(preds)
    gt = load_ground_truth(gt_dict)
    detections = load_predictions(preds, gt)
    assert len(detections.scores) == len(preds)
    for iou in ("box", "mask"):
        res = chota(gt_dict, preds, iou=iou, caption_metrics=("cider",), score_threshold=0.0).to_dict()
        assert 0.0 <= res["DetA"] <= 1.0 and res["HOTA_FP"] + res["HOTA_TP"] > 0


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--config", "tiny", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                 "--steps", "1"]) == 2
    assert "nope" in capsys.readouterr().err


def test_two_stage_training_freezes_the_right_half(run, tmp_path):
    start = torch.load(run / "checkpoint.pt", weights_only=False)["model"]
    det, cap = tmp_path / "det", tmp_path / "cap"
    assert main(["train", "--config", "tiny", "--data", DATA, "--out", str(det), "--steps", "2",
                 "--batch-size", "2", "--stage", "detector", "--init", str(run / "checkpoint.pt")]) == 0
    after_det = torch.load(det / "checkpoint.pt", weights_only=False)["model"]
    assert main(["train", "--config", "tiny", "--data", DATA, "--out", str(cap), "--steps", "2",
                 "--batch-size", "2", "--stage", "caption", "--init", str(det / "checkpoint.pt")]) == 0
    after_cap = torch.load(cap / "checkpoint.pt", weights_only=False)["model"]
    head = [k for k in start if k.startswith("caption_head.") and start[k].is_floating_point()]
    # BatchNorm running statistics included: a frozen detector keeps them too.
    detector = [k for k in start if not k.startswith("caption_head.") and start[k].is_floating_point()]
    assert all(torch.equal(start[k], after_det[k]) for k in head), "detector stage left the caption head"
    assert any(not torch.equal(start[k], after_det[k]) for k in detector)
    assert all(torch.equal(after_det[k], after_cap[k]) for k in detector), "caption stage left the detector"
    assert any(not torch.equal(after_det[k], after_cap[k]) for k in head)
