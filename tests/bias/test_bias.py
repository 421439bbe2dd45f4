"""`benchmark bias` on constructed cases with known answers, through the real scorer."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from benchmark import chota
from benchmark.bias import (
    bootstrap_weights, caption_statistics, compare_ground_truths, paired_resample, write_report,
)
from benchmark.errors import InputError

AUTO = ["A black dog runs across the green lawn", "A red car parked near the old house",
        "A woman in a yellow coat walks slowly"]
MANUAL = ["Brown puppy chasing ball outside today", "Small vehicle waiting beside building entrance",
          "Lady wearing raincoat strolling street corner"]
CATS = ["dog", "car", "person"]


def make_gt(captions_per_video):
    """Videos of 3 frames, each with 3 tracks; every track captioned on every frame."""
    videos, images, anns = [], [], []
    for v, captions in enumerate(captions_per_video, 1):
        videos.append({"id": v, "name": f"v{v}", "height": 100, "width": 200, "length": 3})
        for f in range(3):
            image_id = v * 10 + f
            images.append({"id": image_id, "video_id": v, "frame_index": f, "file_name": f"v{v}/{f}.jpg",
                           "height": 100, "width": 200})
            for t, caption in enumerate(captions):
                anns.append({"id": len(anns) + 1, "image_id": image_id, "video_id": v, "track_id": v * 100 + t,
                             "category_id": t + 1, "bbox": [10 + 60 * t, 10, 40, 30], "area": 1200.0,
                             "iscrowd": 0, "caption": caption})
    return {"info": {}, "videos": videos, "images": images, "annotations": anns,
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CATS)]}


def predictions_from(gt, captions_per_video, drop_video=None):
    """Perfect boxes with the given captions (optionally missing one video)."""
    preds = []
    for ann in gt["annotations"]:
        if ann["video_id"] == drop_video:
            continue
        preds.append({"image_id": ann["image_id"], "video_id": ann["video_id"], "track_id": ann["track_id"],
                      "category_id": ann["category_id"], "bbox": ann["bbox"], "score": 0.9,
                      "caption": captions_per_video[ann["video_id"] - 1][ann["track_id"] % 100]})
    return preds


OPTS = {"caption_metrics": ("cider",), "num_bootstrap": 200, "scorer_options": {"cache": None}}


def test_identical_ground_truths_give_zero_change_and_tau_one():
    gt = make_gt([AUTO, AUTO[::-1]])
    systems = {"good": predictions_from(gt, [AUTO, AUTO[::-1]]),
               "half": predictions_from(gt, [AUTO, MANUAL]),
               "missing": predictions_from(gt, [AUTO, AUTO[::-1]], drop_video=2)}
    res = compare_ground_truths(gt, json.loads(json.dumps(gt)), systems, **OPTS)
    assert res.warnings == []                                   # per-video sums == scorer totals
    assert np.allclose(res.changes["delta"], 0.0)
    assert np.allclose(res.changes[["ci_low", "ci_high"]], 0.0)
    assert res.rank_agreement["CHOTA"]["kendall_tau"] == pytest.approx(1.0)
    assert res.rank_agreement["CapA"]["kendall_tau"] == pytest.approx(1.0)
    scores = res.scores.set_index(["system", "gt"])
    assert scores.loc[("good", "automatic"), "DetA"] == pytest.approx(1.0)
    assert scores.loc[("missing", "automatic"), "DetA"] == pytest.approx(0.5)   # 9 TP, 9 FN
    assert scores.loc[("good", "automatic"), "CapA"] > scores.loc[("half", "automatic"), "CapA"] > 0


def test_flipped_ranking_gives_tau_minus_one_and_significant_differences():
    auto = make_gt([AUTO, AUTO[::-1], AUTO[1:] + AUTO[:1]])
    caps_manual = [MANUAL, MANUAL[::-1], MANUAL[1:] + MANUAL[:1]]
    manual = make_gt(caps_manual)
    systems = {"A_like_auto": predictions_from(auto, [AUTO, AUTO[::-1], AUTO[1:] + AUTO[:1]]),
               "B_like_manual": predictions_from(auto, caps_manual)}
    res = compare_ground_truths(auto, manual, systems, **OPTS)
    assert res.rank_agreement["CapA"]["kendall_tau"] == pytest.approx(-1.0)
    assert res.rank_agreement["CHOTA"]["kendall_tau"] == pytest.approx(-1.0)
    scores = res.scores.set_index(["system", "gt"])
    # No shared word between the two caption sets: the other GT's captions score CIDEr 0.
    assert scores.loc[("B_like_manual", "automatic"), "CapA"] == pytest.approx(0.0, abs=1e-9)
    assert scores.loc[("A_like_auto", "manual"), "CapA"] == pytest.approx(0.0, abs=1e-9)
    assert scores.loc[("A_like_auto", "automatic"), "CapA"] > 1.0
    pair = res.pairwise.set_index(["gt", "field"])
    auto_diff = pair.loc[("automatic", "CapA")]
    man_diff = pair.loc[("manual", "CapA")]
    assert auto_diff["ci_low"] > 0 and man_diff["ci_high"] < 0  # each GT: a clear, opposite winner
    change = res.changes.set_index(["system", "field"])
    assert change.loc[("A_like_auto", "CapA"), "delta"] == pytest.approx(-scores.loc[("A_like_auto", "automatic"), "CapA"])


def four_video_results(alphas):
    """Two systems on 4 videos: one misses video 2 (no TP there), one has mixed captions."""
    caps = [AUTO, AUTO[::-1], AUTO[1:] + AUTO[:1], MANUAL]
    gt = make_gt(caps)
    systems = {"A": predictions_from(gt, caps, drop_video=2),
               "B": predictions_from(gt, [AUTO, MANUAL, AUTO[1:] + AUTO[:1], MANUAL[::-1]])}
    return {s: chota(gt, p, alphas=alphas, caption_metrics=("cider",), cache=None)
            for s, p in systems.items()}


def test_bootstrap_matches_a_naive_loop():
    results = four_video_results(alphas=(0.5,))
    ids = [1, 2, 3, 4]
    weights = bootstrap_weights(4, 50, seed=1)
    fast = paired_resample(results, weights, ids)
    for name, res in results.items():
        # One alpha: the scorer's per-video sums, resampled by hand with the reference's formula.
        st = {k: v[:, 0] for k, v in res.video_stats.items()}
        assert st["HOTA_TP"][1] == (0.0 if name == "A" else 9.0)
        for b in range(50):
            idx = np.repeat(np.arange(4), weights[b].astype(int))
            tp, fn, fp = (st[c][idx].sum() for c in ("HOTA_TP", "HOTA_FN", "HOTA_FP"))
            ass = st["AssA*TP"][idx].sum() / max(1.0, tp)
            caps = st["TP_with_caps"][idx].sum()
            cap = st["sum-cider"][idx].sum() / caps if caps else 1.0
            assert fast[name]["CHOTA"][b] == pytest.approx((tp / max(1.0, tp + fn + fp) * ass * cap) ** (1 / 3))
    assert weights.sum(axis=1).tolist() == [4.0] * 50                 # each resample has 4 videos


def test_paired_resample_all_ones_is_the_scorer_and_rows_align_by_video_id():
    results = four_video_results(alphas="hota")
    boot = paired_resample(results, np.ones((1, 4)), [1, 2, 3, 4])
    for name, res in results.items():
        assert len(res.alphas) == 19
        for field_name, value in res.to_dict().items():
            assert boot[name][field_name][0] == pytest.approx(value, rel=1e-12), (name, field_name)
    # The same result with its video rows reversed resamples identically: weights follow ids.
    a = results["A"]
    flipped = dataclasses.replace(a, per_video=a.per_video.iloc[::-1].reset_index(drop=True),
                                  video_stats={k: v[::-1] for k, v in a.video_stats.items()})
    weights = np.array([[3.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 2.0]])
    straight, reverse = (paired_resample({"x": r}, weights, [1, 2, 3, 4])["x"] for r in (a, flipped))
    for field_name in ("DetA", "AssA", "CapA", "CHOTA"):
        np.testing.assert_allclose(reverse[field_name], straight[field_name], rtol=1e-12)
    assert straight["DetA"][0] != pytest.approx(straight["DetA"][1])  # video 2 (no TP) matters
    with pytest.raises(InputError, match="scored videos differ"):
        paired_resample({"A": a}, np.ones(3), [1, 2, 3])


def test_any_alphas_through_compare():
    gt = make_gt([AUTO, AUTO[::-1]])
    systems = {"good": predictions_from(gt, [AUTO, AUTO[::-1]]),
               "half": predictions_from(gt, [AUTO, MANUAL])}
    res = compare_ground_truths(gt, json.loads(json.dumps(gt)), systems, **{**OPTS, "alphas": "hota"})
    assert len(res.settings["alphas"]) == 19
    assert np.allclose(res.changes[["delta", "ci_low", "ci_high"]], 0.0)
    direct = chota(gt, systems["half"], alphas="hota", caption_metrics=("cider",), cache=None)
    scores = res.scores.set_index(["system", "gt"])
    for name in ("DetA", "AssA", "CapA", "CHOTA"):
        assert scores.loc[("half", "manual"), name] == pytest.approx(direct[name], rel=1e-12)


def test_caption_statistics_hand_counted():
    gt = make_gt([["Two dogs play with a dog toy", "A car", ""]])
    stats = caption_statistics(gt)
    assert stats["captions"] == 2                                # one per captioned track, not per frame
    assert stats["mean_words"] == pytest.approx((7 + 2) / 2)
    assert stats["vocabulary"] == 8                              # two dogs play with a dog toy + car
    assert stats["category_named"] == pytest.approx(1.0)
    lvis = {"categories": [{"id": 1, "name": "baseball_bat"}, {"id": 2, "name": "bow_(weapon)"}],
            "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "caption": "A wooden baseball bat."},
                            {"id": 2, "video_id": 1, "category_id": 2, "caption": "A rainbow in the sky."}]}
    assert caption_statistics(lvis)["category_named"] == pytest.approx(0.5)


def test_report_files_and_errors(tmp_path):
    gt = make_gt([AUTO, AUTO[::-1]])
    systems = {"A": predictions_from(gt, [AUTO, AUTO[::-1]]), "B": predictions_from(gt, [MANUAL, MANUAL])}
    res = compare_ground_truths(gt, make_gt([MANUAL, MANUAL]), systems, **OPTS)
    assert res.warnings == []                                   # exact even where CapA is 0 (floored)
    paths = write_report(res, tmp_path)
    assert {p.name for p in tmp_path.iterdir()} >= {"bias.md", "bias.json", "bias.csv", "scores.png",
                                                    "pairwise.png", "caption_lengths.png"}
    data = json.loads(paths["json"].read_text())
    assert data["systems"] == ["A", "B"] and len(data["scores"]) == 4
    assert "| automatic | A |" in paths["markdown"].read_text()
    with pytest.raises(InputError, match="two systems"):
        compare_ground_truths(gt, gt, {"A": systems["A"]}, **OPTS)
    other = make_gt([AUTO, AUTO, AUTO])                         # a third video the automatic GT lacks
    with pytest.raises(InputError, match="1 videos the automatic one lacks") as caught:
        compare_ground_truths(gt, other, systems, **OPTS)
    assert caught.value.field == "videos"


def test_full_split_inputs_are_restricted_to_the_manual_subset():
    # The automatic GT and the predictions cover three videos; the manual GT covers videos 1 and
    # 2, and in video 2 only two of the three objects.
    auto = make_gt([AUTO, AUTO[::-1], AUTO])
    manual = make_gt([MANUAL, MANUAL[::-1]])
    manual["annotations"] = [a for a in manual["annotations"] if a["track_id"] != 202]
    systems = {"A": predictions_from(auto, [AUTO, AUTO[::-1], AUTO]),
               "B": predictions_from(auto, [MANUAL, MANUAL[::-1], MANUAL])}
    res = compare_ground_truths(auto, manual, systems, **OPTS)
    assert dataclasses.asdict(res.subset) == {"videos": 2, "objects": 5, "dropped_videos": 1,
                                              "dropped_objects": 1, "dropped_predictions": {"A": 9, "B": 9}}
    assert res.warnings == ["automatic ground truth: 1 videos and 1 objects outside the manual subset dropped",
                            "A: 9 prediction records outside the manual subset's videos dropped",
                            "B: 9 prediction records outside the manual subset's videos dropped"]
    # The same numbers as scoring hand-restricted inputs: video 3 gone, track 202 out of the
    # automatic GT (its predictions stay: they are false positives under both GTs alike).
    hand_gt = make_gt([AUTO, AUTO[::-1]])
    hand_gt["annotations"] = [a for a in hand_gt["annotations"] if a["track_id"] != 202]
    hand = {k: [r for r in v if r["video_id"] != 3] for k, v in systems.items()}
    for name in ("A", "B"):
        expected = chota(hand_gt, hand[name], caption_metrics=("cider",), cache=None)
        row = res.scores[(res.scores["system"] == name) & (res.scores["gt"] == "automatic")].iloc[0]
        assert row["CHOTA"] == pytest.approx(expected["CHOTA"], abs=1e-12)
        assert row["DetA"] == pytest.approx(expected["DetA"], abs=1e-12)
    assert res.settings["videos"] == 2 and res.settings["objects"] == 5
    missing = make_gt([MANUAL, MANUAL[::-1]])
    missing["annotations"][0]["track_id"] = 999                  # an object the automatic GT lacks
    with pytest.raises(InputError, match="track 999 of video 1") as caught:
        compare_ground_truths(auto, missing, systems, **OPTS)
    assert caught.value.field == "track_id"


def test_bias_command_end_to_end(tmp_path, capsys):
    from benchmark.cli import main

    auto, manual = make_gt([AUTO, AUTO[::-1]]), make_gt([MANUAL, MANUAL[::-1]])
    files = {}
    for name, obj in {"auto": auto, "manual": manual,
                      "a": predictions_from(auto, [AUTO, AUTO[::-1]]),
                      "b": predictions_from(auto, [MANUAL, MANUAL[::-1]])}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(obj))
    code = main(["bias", "--automatic", str(files["auto"]), "--manual", str(files["manual"]),
                 "--pred", f"a={files['a']}", "--pred", f"b={files['b']}", "--out", str(tmp_path / "rep"),
                 "--caption-metrics", "cider", "--bootstrap", "100", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Kendall tau (CapA): -1.000" in out
    assert (tmp_path / "rep" / "bias.md").exists()
    assert main(["bias", "--automatic", str(files["auto"]), "--manual", str(files["manual"]),
                 "--pred", "a", "--pred", f"b={files['b']}", "--out", str(tmp_path / "rep2")]) == 2
