"""Challenge-host adapters (EvalAI, Codabench/CodaLab) on the same validation and scoring core."""

from __future__ import annotations

import json
import os
import shutil
import zipfile

import pytest

from benchmark.errors import InputError
from leaderboard import codabench
from leaderboard.evalai import evaluate


@pytest.fixture(scope="module")
def expected(data_dir):
    return json.loads((data_dir / "expected.json").read_text())["box/alpha0.5"]


def test_evalai_evaluate(data_dir, tmp_path, expected):
    sub = tmp_path / "upload.zip"
    with zipfile.ZipFile(sub, "w") as zf:
        zf.write(data_dir / "pred.json", "results.json")
    out = evaluate(str(data_dir / "gt.json"), str(sub), "golden-box",
                   tracks_file=str(data_dir / "tracks.yaml"), split_codename="test_split")
    result = out["result"][0]["test_split"]
    assert result is out["submission_result"]
    assert result["DetA"] == pytest.approx(expected["DetA"], rel=1e-5)
    assert result["HOTA"] == pytest.approx(expected["HOTA"], rel=1e-5)
    assert set(result) == {"CHOTA", "CapA", "DetA", "AssA", "HOTA", "LocA", "CapA-cider"}
    assert out["submission_metadata"]["checksum"].startswith("sha256:")


def test_evalai_rejects_bad_file_with_a_message(data_dir, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[{]")
    with pytest.raises(InputError, match="bad.json: not valid JSON"):
        evaluate(str(data_dir / "gt.json"), str(bad), "golden-box",
                 tracks_file=str(data_dir / "tracks.yaml"))


def _layout(tmp_path, data_dir, *, extra=None):
    ref, res = tmp_path / "input" / "ref", tmp_path / "input" / "res" / "nested"
    ref.mkdir(parents=True)
    res.mkdir(parents=True)
    shutil.copy(data_dir / "gt.json", ref / "gt.json")
    shutil.copy(data_dir / "pred.json", res / "pred.json")
    if extra:
        extra(res)
    return tmp_path / "input", tmp_path / "output"


def test_codabench_scoring_program(data_dir, tmp_path, expected, capsys):
    inp, out = _layout(tmp_path, data_dir)
    code = codabench.main([str(inp), str(out), "--track", "golden-box",
                           "--tracks", str(data_dir / "tracks.yaml")])
    assert code == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["AssA"] == pytest.approx(expected["AssA"], rel=1e-5)
    lines = (out / "scores.txt").read_text().splitlines()
    assert f"DetA: {expected['DetA']:.6f}" in lines
    detailed = (out / "detailed_results.html").read_text()
    # One row per metric of the full result (16 with CIDEr only) and per video (3).
    assert detailed.count("<tr>") == 2 + 16 + 3
    assert "video_001" in detailed and "video_003" in detailed


@pytest.mark.parametrize("extra, message", [
    (lambda res: shutil.copy(res / "pred.json", res / "second.json"), "exactly one"),
    (lambda res: os.symlink("/etc/hostname", res / "link.json"), "symbolic links"),
])
def test_codabench_bad_layouts_write_nothing(data_dir, tmp_path, capsys, extra, message):
    inp, out = _layout(tmp_path, data_dir, extra=extra)
    code = codabench.main([str(inp), str(out), "--track", "golden-box",
                           "--tracks", str(data_dir / "tracks.yaml")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
