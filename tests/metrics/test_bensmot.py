"""BenSMOT instance captioning: the pairing of each protocol on hand-made tracks, CIDEr and
ROUGE-L against pycocoevalcap on the pooled pairs, bad input named, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from benchmark.cli import main
from benchmark.errors import InputError
from benchmark.metrics.bensmot import bensmot_captions, rouge_l

BOX = [0, 0, 10, 10]


def _gt():
    """One 4-frame video: a captioned man (10), an uncaptioned track (20), a car from frame 2 (30)."""
    return {"videos": [{"id": 1, "height": 100, "width": 200, "length": 4}],
            "annotations": [
                {"id": 10, "video_id": 1, "category_id": 1, "bboxes": [BOX] * 4, "caption": "a man walks a dog"},
                {"id": 20, "video_id": 1, "category_id": 1, "bboxes": [[20, 0, 10, 10]] * 4, "caption": ""},
                {"id": 30, "video_id": 1, "category_id": 1, "bboxes": [None, None, [40, 40, 10, 10],
                                                                        [40, 40, 10, 10]], "caption": "a red car"}]}


def _pred():
    return [
        # On the man in frames 0-1: mean IoU 1 with track 10 (track 30 shares no frame).
        {"video_id": 1, "category_id": 1, "score": 0.9, "caption": "a man walks", "bboxes": [BOX, BOX, None, None]},
        # Exactly on the uncaptioned track 20.
        {"video_id": 1, "category_id": 1, "score": 0.8, "caption": "a person", "bboxes": [[20, 0, 10, 10]] * 4},
        # Half on the car: IoU 50/150 = 1/3 without +1; with +1, 66/176 = 0.375.
        {"video_id": 1, "category_id": 1, "score": 0.7, "caption": "a red car",
         "bboxes": [None, None, [45, 40, 10, 10], [45, 40, 10, 10]]},
        # On nothing.
        {"video_id": 1, "category_id": 1, "score": 0.3, "caption": "a bird", "bboxes": [[100, 80, 5, 5], None, None, None]},
    ]


def test_captionformer_pairs_every_track_with_its_best_mean_iou_track():
    res = bensmot_captions(_gt(), _pred(), protocol="captionformer")
    table = res.per_pair
    assert table["gt_track"].tolist() == [10, 20, 30, 10]   # the bird: no overlap, first track
    np.testing.assert_allclose(table["mean_iou"], [1.0, 1.0, 1 / 3, 0.0])
    assert table["shared_frames"].tolist() == [2, 4, 2, 1]
    assert table["gt_caption"].tolist() == ["a man walks a dog", "", "a red car", "a man walks a dog"]
    assert res.summary["pairs"] == 4 and res.summary["gt_tracks_paired"] == 3
    # score_threshold drops the bird (0.3) before pairing.
    assert bensmot_captions(_gt(), _pred(), score_threshold=0.4).summary["pairs"] == 3


def test_smoter_keeps_captioned_tracks_above_0_2_with_plus_one_iou():
    res = bensmot_captions(_gt(), _pred(), protocol="smoter")
    table = res.per_pair
    # The "person" overlaps only the uncaptioned track (left out) and the bird nothing: dropped.
    assert table["pred_caption"].tolist() == ["a man walks", "a red car"]
    assert table["gt_track"].tolist() == [10, 30]
    np.testing.assert_allclose(table["mean_iou"], [1.0, 66 / 176])
    assert res.summary["predicted_tracks"] == 4 and res.summary["pairs"] == 2


def test_ties_go_to_the_first_track_or_to_the_last():
    gt = {"videos": [{"id": 1, "height": 9, "width": 9, "length": 1}],
          "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "bboxes": [BOX], "caption": "a"},
                          {"id": 2, "video_id": 1, "category_id": 1, "bboxes": [BOX], "caption": "b"}]}
    pred = [{"video_id": 1, "category_id": 1, "score": 1.0, "caption": "a", "bboxes": [BOX]}]
    assert bensmot_captions(gt, pred, protocol="captionformer").per_pair["gt_track"].tolist() == [1]
    assert bensmot_captions(gt, pred, protocol="smoter").per_pair["gt_track"].tolist() == [2]


def test_cider_and_rouge_equal_pycocoevalcap_on_the_pooled_pairs():
    # Repeated captions make the pooled document frequencies matter.
    pred = _pred() + [dict(p, bboxes=p["bboxes"]) for p in _pred()[:3]]
    res = bensmot_captions(_gt(), pred, protocol="captionformer")
    table = res.per_pair
    gts = {i: [g] for i, g in enumerate(table["gt_caption"])}
    res_ = {i: [c] for i, c in enumerate(table["pred_caption"])}
    mean, per_item = Cider().compute_score(gts, res_)
    np.testing.assert_allclose(table["CIDEr"], per_item, rtol=1e-12, atol=1e-12)
    assert res.summary["CIDEr"] == pytest.approx(mean, rel=1e-12)
    rouge_mean, rouge_items = Rouge().compute_score(gts, res_)
    np.testing.assert_allclose(table["ROUGE_L"], rouge_items, rtol=1e-12)
    assert res.summary["ROUGE_L"] == pytest.approx(rouge_mean, rel=1e-12)
    assert rouge_l("a man rides a horse", "a horse") == pytest.approx(
        Rouge().calc_score(["a horse"], ["a man rides a horse"]))


def test_a_track_with_two_captions_is_refused_and_no_pair_is_said(tmp_path):
    gt = {"videos": [{"id": 1, "height": 9, "width": 9, "length": 2}],
          "images": [{"id": 1, "video_id": 1, "frame_index": 0}, {"id": 2, "video_id": 1, "frame_index": 1}],
          "annotations": [{"id": 1, "image_id": 1, "video_id": 1, "track_id": 5, "category_id": 1,
                           "bbox": BOX, "caption": "a"}]}
    pred = [{"image_id": 1, "track_id": 3, "category_id": 1, "score": 1.0, "bbox": BOX, "caption": "x"},
            {"image_id": 2, "track_id": 3, "category_id": 1, "score": 1.0, "bbox": BOX, "caption": "y"}]
    with pytest.raises(InputError, match="2 different ones") as caught:
        bensmot_captions(gt, pred)
    assert caught.value.field == "caption"
    with pytest.warns(UserWarning, match="no predicted track was paired"):
        res = bensmot_captions(gt, [dict(pred[0], bbox=[50, 50, 1, 1])], protocol="smoter")
    assert np.isnan(res.summary["CIDEr"]) and res.summary["pairs"] == 0


def test_the_command_writes_table_5_columns(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps(_gt()))
    (tmp_path / "pred.json").write_text(json.dumps(_pred()))
    out = tmp_path / "s.json"
    assert main(["bensmot", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                 "--protocol", "smoter", "--json", str(out), "--csv", str(tmp_path / "p.csv"), "--quiet"]) == 0
    doc = json.loads(out.read_text())
    assert doc["settings"]["protocol"] == "smoter" and doc["scores"]["pairs"] == 2
    assert {"DetA", "AssA", "CIDEr", "ROUGE_L"} <= set(doc["scores"])
    assert (tmp_path / "p.csv").read_text().count("\n") == 3
