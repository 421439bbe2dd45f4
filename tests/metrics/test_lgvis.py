"""ViCaS LG-VIS mAP: a hand-computed case that shows the published matching."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.errors import InputError
from benchmark.metrics.lgvis import lgvis_map

H, W = 4, 100


def _cols(lo, hi):
    m = np.zeros((H, W), np.uint8, order="F")
    m[:, lo:hi] = 1
    r = mask_utils.encode(m)
    return {"size": r["size"], "counts": r["counts"].decode()}


def _case():
    """Referral 0: GT t1 = cols 0-50, t2 = cols 10-60; p0 = cols 0-50 (IoU 1.0 / 0.667),
    p1 = cols 0-45 (IoU 0.9 / 0.583). Referral 1: GT t3, no prediction. Frame b is not
    human-annotated and must be ignored (the predictions there are garbage)."""
    gt = {"video_id": 7, "image_size": [H, W],
          "object_referrals": [{"prompt": "where are the two?", "track_ids": [1, 2]},
                               {"prompt": "where is the third?", "track_ids": [3]}],
          "segmentations": [
              {"filename": "a.jpg", "is_gt": True, "track_ids": [1, 2, 3],
               "mask_rles": [_cols(0, 50), _cols(10, 60), _cols(90, 100)]},
              {"filename": "b.jpg", "is_gt": False, "track_ids": [1, 2, 3],
               "mask_rles": [_cols(0, 50), _cols(10, 60), _cols(90, 100)]}]}
    pred = {"video_id": 7, "pred_lgvis_masks": [
        [{"filename": "a.jpg", "mask_rles": [_cols(0, 50), _cols(0, 45)]},
         {"filename": "b.jpg", "mask_rles": [_cols(70, 80), _cols(70, 80)]}],
        [{"filename": "a.jpg", "mask_rles": []}]]}
    return gt, pred


def test_hand_computed_with_last_match_rule():
    gt, pred = _case()
    res = lgvis_map([gt], [pred])
    # thresholds 0.50-0.65: p0 takes t2 (the *last* GT above threshold), p1 takes t1:
    #   TP TP of 3 GT -> AP 2/3.  Best-IoU matching would leave p1 unmatched at 0.60/0.65.
    # thresholds 0.70-0.95: p0 takes t1, p1 finds nothing: TP FP -> AP 1/3.
    assert res.summary["AP50"] == pytest.approx(2 / 3, abs=1e-6)
    assert res.summary["AP75"] == pytest.approx(1 / 3, abs=1e-6)
    assert res.summary["AP90"] == pytest.approx(1 / 3, abs=1e-6)
    assert res.summary["mAP"] == pytest.approx((4 * 2 / 3 + 6 * 1 / 3) / 10, abs=1e-6)
    ap = res.per_threshold["AP"].to_numpy()
    assert ap[2] == pytest.approx(2 / 3, abs=1e-6)  # 0.60: where the quirk shows
    assert res.summary["gt_objects"] == 3 and res.summary["predicted_objects"] == 2


def test_at_most_ten_predictions_per_referral(tmp_path):
    gt, pred = _case()
    pred["pred_lgvis_masks"][0] = [{"filename": "a.jpg",
                                    "mask_rles": [_cols(0, 50)] + [_cols(95, 100)] * 11}]
    folder_gt, folder_pred = tmp_path / "gt", tmp_path / "pred"
    folder_gt.mkdir()
    folder_pred.mkdir()
    (folder_gt / "000007.json").write_text(json.dumps(gt))
    (folder_pred / "000007.json").write_text(json.dumps(pred))
    res = lgvis_map(str(folder_gt), str(folder_pred))
    assert res.summary["predicted_objects"] == 10
    # one TP first, then 9 FP: AP = 1/3 at every threshold
    assert res.summary["mAP"] == pytest.approx(1 / 3, abs=1e-6)


def test_missing_annotated_frame_is_an_input_error():
    gt, pred = _case()
    pred["pred_lgvis_masks"][0] = pred["pred_lgvis_masks"][0][1:]
    with pytest.raises(InputError, match=r"referral 0 lacks annotated frames \['a.jpg'\]"):
        lgvis_map([gt], [pred])
    with pytest.raises(InputError, match="no prediction for video 7"):
        lgvis_map([gt], [{"video_id": 8, "pred_lgvis_masks": []}])
