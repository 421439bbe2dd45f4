"""DAVIS J&F: hand-computed cases, TrackEval's boundary map and a brute-force F."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.metrics.jf import (boundary_f_measure, boundary_map, boundary_radius, j_and_f,
                                  region_similarity)


def _random_blobs(rng, shape=(40, 50)):
    m = np.zeros(shape, bool)
    for _ in range(3):
        y, x = rng.integers(0, shape[0] - 5), rng.integers(0, shape[1] - 5)
        m[y:y + rng.integers(3, 15), x:x + rng.integers(3, 15)] = True
    return m


def test_boundary_map_hand_case():
    m = np.zeros((6, 6), bool)
    m[2:4, 2:4] = True
    expected = {(1, 1), (1, 2), (1, 3), (2, 1), (3, 1), (2, 3), (3, 2), (3, 3)}
    assert set(zip(*np.nonzero(boundary_map(m)))) == expected


def test_boundary_map_matches_trackeval_seg2bmap():
    trackeval = pytest.importorskip("trackeval")
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = _random_blobs(rng)
        ref = trackeval.metrics.JAndF._seg2bmap(m.astype(np.uint8))
        assert np.array_equal(boundary_map(m), ref.astype(bool))


def _brute_force_f(gt, pred, radius):
    """F from Euclidean distances between boundary pixels (no morphology)."""
    gb, pb = np.argwhere(boundary_map(gt)), np.argwhere(boundary_map(pred))
    if len(pb) == 0 or len(gb) == 0:
        p = 1.0 if len(pb) == 0 else 0.0
        r = 1.0 if len(gb) == 0 else 0.0
    else:
        d = np.sqrt(((pb[:, None, :] - gb[None, :, :]) ** 2).sum(-1))
        p = float(np.mean(d.min(1) <= radius))
        r = float(np.mean(d.min(0) <= radius))
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def test_boundary_f_matches_distance_definition():
    rng = np.random.default_rng(1)
    for shape in ((40, 50), (300, 400)):  # radius 1 and radius 4
        for _ in range(8):
            gt, pred = _random_blobs(rng, shape), _random_blobs(rng, shape)
            radius = boundary_radius(shape)
            assert boundary_f_measure(gt, pred) == pytest.approx(
                _brute_force_f(gt, pred, radius), abs=1e-12)


def test_boundary_radius_and_edge_cases():
    assert boundary_radius((100, 100)) == 2  # ceil(0.008 * 141.4)
    assert boundary_radius((480, 854)) == 8
    assert boundary_radius((10, 10), 3) == 3  # >= 1: pixels
    gt = np.zeros((100, 100), bool)
    gt[20:40, 20:40] = True
    shifted = np.roll(gt, 2, axis=1)  # every boundary pixel within 2 px
    assert boundary_f_measure(gt, shifted) == 1.0
    assert boundary_f_measure(gt, np.zeros_like(gt)) == 0.0  # P = 1, R = 0
    assert boundary_f_measure(np.zeros_like(gt), np.zeros_like(gt)) == 1.0
    assert region_similarity(gt, shifted) == pytest.approx(360 / 440)


def _enc(m):
    r = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": r["size"], "counts": r["counts"].decode()}


def test_j_and_f_per_object_and_davis_frame_rule():
    h, w, n = 20, 20, 4
    a = np.zeros((h, w), bool)
    a[2:12, 2:12] = True
    half = np.zeros((h, w), bool)
    half[2:12, 2:7] = True
    b = np.zeros((h, w), bool)
    b[14:18, 14:18] = True
    gt = {"videos": [{"id": 1, "height": h, "width": w, "length": n}],
          "annotations": [
              {"id": 1, "video_id": 1, "category_id": 1, "segmentations": [_enc(a)] * n},
              {"id": 2, "video_id": 1, "category_id": 1,
               "segmentations": [_enc(b), None, _enc(b), _enc(b)]}]}
    # object 1: frame 0 wrong (left out), frame 1 half, frame 2 exact; object 2: no masklet
    pred = [{"video_id": 1, "track_id": 1, "segmentations":
             [_enc(b), _enc(half), _enc(a), None]}]
    res = j_and_f(gt, pred)
    rows = res.per_object.set_index("track_id")
    assert rows.loc[1, "J"] == pytest.approx((0.5 + 1.0) / 2)
    assert rows.loc[1, "F"] == pytest.approx((boundary_f_measure(a, half) + 1.0) / 2)
    # object 2, frames 1 and 2: both empty (J = F = 1), then GT only (J = F = 0)
    assert rows.loc[2, "J"] == 0.5 and rows.loc[2, "F"] == 0.5
    assert res.summary["J"] == pytest.approx((0.75 + 0.5) / 2)
    assert res.summary["J&F"] == pytest.approx((res.summary["J"] + res.summary["F"]) / 2)
    assert rows.loc[1, "J-Recall"] == 0.5  # 0.5 is not > 0.5
    every = j_and_f(gt, pred, skip_first_and_last=False).per_object.set_index("track_id")
    assert every.loc[1, "J"] == pytest.approx((0 + 0.5 + 1 + 0) / 4)


def _jf_case():
    h, w, n = 10, 10, 3
    a = np.zeros((h, w), bool)
    a[2:6, 2:6] = True
    gt = {"videos": [{"id": 1, "height": h, "width": w, "length": n}],
          "annotations": [{"id": 1, "video_id": 1, "category_id": 1,
                           "segmentations": [_enc(a)] * n}]}
    # the masklet names object 7, which the GT does not have: it answers nothing
    pred = [{"video_id": 1, "track_id": 7, "segmentations": [_enc(a)] * n}]
    return gt, pred


def test_masklets_naming_no_gt_object_are_warned_about():
    gt, pred = _jf_case()
    with pytest.warns(UserWarning, match="1 of 1 predicted masklets name no ground-truth object"):
        res = j_and_f(gt, pred)
    assert res.summary["J"] == 0.0  # scored as if empty, as before
    assert len(res.warnings) == 1 and "video 1 track 7" in res.warnings[0]
    pred.append({"video_id": 1, "track_id": 1, "segmentations": pred[0]["segmentations"]})
    with pytest.warns(UserWarning, match="1 of 2 predicted"):
        assert j_and_f(gt, pred).summary["J"] == 1.0


def test_jf_cli_prints_the_warning_on_stderr(tmp_path, capsys):
    import json

    from benchmark.cli import main

    gt, pred = _jf_case()
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    assert main(["jf", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                 "--quiet", "--json", str(tmp_path / "jf.json")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "predicted masklets" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: 1 of 1 predicted masklets")
    doc = json.loads((tmp_path / "jf.json").read_text())
    assert doc["warnings"] and "name no ground-truth object" in doc["warnings"][0]
