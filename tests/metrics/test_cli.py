"""The metric sub-commands: table, --json, --csv, and one-line errors."""

from __future__ import annotations

import csv
import json

import pytest

from benchmark.cli import main

GT = {"videos": [{"id": 1, "height": 100, "width": 100, "length": 1}],
      "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "bboxes": [[0, 0, 10, 10]],
                       "captions": ["a red cup", "a cup"]},
                      {"id": 2, "video_id": 1, "category_id": 1, "bboxes": [[50, 50, 10, 10]],
                       "captions": ["a blue ball", "a ball"]}],
      "categories": [{"id": 1, "name": "thing", "partition": 2}]}
PRED = [{"video_id": 1, "id": 1, "category_id": 1, "score": 0.9, "bboxes": [[0, 0, 9, 9]],
         "caption": "a red cup"},
        {"video_id": 1, "id": 2, "category_id": 1, "score": 0.7, "bboxes": [[51, 51, 8, 8]],
         "caption": "a dog"}]


@pytest.fixture()
def files(tmp_path):
    gt, pred = tmp_path / "gt.json", tmp_path / "pred.json"
    gt.write_text(json.dumps(GT))
    pred.write_text(json.dumps(PRED))
    return gt, pred, tmp_path


def test_trackmap_writes_json_and_csv(files, capsys):
    gt, pred, tmp = files
    code = main(["trackmap", "--gt", str(gt), "--pred", str(pred), "--iou", "box", "--lvvis",
                 "--json", str(tmp / "m.json"), "--csv", str(tmp / "m.csv"), "--quiet"])
    assert code == 0
    doc = json.loads((tmp / "m.json").read_text())
    # IoUs 0.81 and 0.64: both TP up to 0.60, one TP (of 2 GT) up to 0.80
    expected = (3 * 1.0 + 4 * 51 / 101) / 10
    assert doc["scores"]["AP"] == pytest.approx(expected)
    assert doc["scores"]["AP_novel"] == pytest.approx(expected)
    assert doc["scores"]["AP_base"] == -1
    assert doc["settings"]["iou"] == "box"
    rows = list(csv.DictReader((tmp / "m.csv").open()))
    assert rows[0]["name"] == "thing" and float(rows[0]["AP"]) == pytest.approx(expected, 1e-5)
    assert "Track mAP" in capsys.readouterr().out


def test_trackmap_dash_writes_json_to_stdout_and_refuses_a_symlink(files, capsys):
    gt, pred, tmp = files
    base = ["trackmap", "--gt", str(gt), "--pred", str(pred), "--iou", "box", "--quiet"]
    assert main([*base, "--json", "-"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # standard output is the JSON and nothing else
    assert doc["scores"]["AP"] == pytest.approx((3 * 1.0 + 4 * 51 / 101) / 10)
    assert "Track mAP" in captured.err
    (tmp / "real.csv").write_text("old")
    (tmp / "link.csv").symlink_to(tmp / "real.csv")
    assert main([*base, "--csv", str(tmp / "link.csv")]) == 2
    assert "link.csv: is a symbolic link, not a regular file" in capsys.readouterr().err
    assert (tmp / "link.csv").is_symlink() and (tmp / "real.csv").read_text() == "old"


def test_vocap_command(files):
    gt, pred, tmp = files
    assert main(["vocap", "--gt", str(gt), "--pred", str(pred), "--json", str(tmp / "v.json"),
                 "--quiet"]) == 0
    scores = json.loads((tmp / "v.json").read_text())["scores"]
    from benchmark.metrics.vocap import multi_reference_cider
    ref = multi_reference_cider({1: ["a red cup", "a cup"], 2: ["a blue ball", "a ball"]},
                                {1: "a red cup", 2: "a dog"})
    assert scores["CIDER"] == pytest.approx((ref[1] + ref[2]) / 2)
    assert scores["objects_predicted"] == 2


def test_bad_input_is_one_line_and_exit_2(files, capsys):
    gt, pred, tmp = files
    bad = tmp / "bad.json"
    bad.write_text(json.dumps([{"video_id": 1, "category_id": 1, "score": "high",
                                "bboxes": [[0, 0, 1, 1]]}]))
    assert main(["trackmap", "--gt", str(gt), "--pred", str(bad), "--iou", "box"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.json: record 0, field 'score'" in err
    assert not (tmp / "out.json").exists()


def test_trackmap_refuses_a_missing_score_like_score_does(files, capsys):
    gt, pred, tmp = files
    bad = tmp / "noscore.json"
    bad.write_text(json.dumps([{k: v for k, v in p.items() if k != "score"} for p in PRED]))
    assert main(["trackmap", "--gt", str(gt), "--pred", str(bad), "--iou", "box",
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "noscore.json: record 1, field 'score'" in err
