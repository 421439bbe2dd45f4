"""The ``leaderboard`` command: one command from file to ranked row; bad files get one line
and exit status 2; the bundled sample ranks good > fair > poor."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from benchmark.sample_data import SAMPLE_QUALITIES, sample_paths
from leaderboard.cli import main
from leaderboard.service import score_submission
from leaderboard.store import Store
from leaderboard.tracks import load_tracks


@pytest.fixture
def cli(data_dir, tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args):
        return main([*args, "--db", db, "--tracks", str(data_dir / "tracks.yaml")])
    run.db = db
    return run


def test_score_then_render(cli, data_dir, tmp_path, capsys):
    out_json, out_csv = tmp_path / "scores.json", tmp_path / "videos.csv"
    assert cli("score", str(data_dir / "pred.json"), "--track", "golden-box", "--team", "Lab",
               "--method", "Golden", "--json", str(out_json), "--csv", str(out_csv),
               "--no-progress") == 0
    record = json.loads(out_json.read_text())
    assert (record["rank"], record["created"], record["track"]) == (1, True, "golden-box")
    assert record["metrics"]["DetA"] == pytest.approx(0.13333334, rel=1e-5)
    assert out_csv.read_text().splitlines()[0].startswith("video_id,video,")
    printed = capsys.readouterr().out
    assert "rank 1" in printed
    # Counts are whole numbers in the console table, scores keep 4 decimals.
    tp = int(record["metrics"]["HOTA_TP"])
    assert re.search(rf"HOTA_TP\s+│\s+{tp}\s+│", printed) and f"{tp}.0000" not in printed
    # Same file again: no new row, says so.
    assert cli("score", str(data_dir / "pred.json"), "--track", "golden-box", "--team", "Lab",
               "--method", "Again", "--no-progress") == 0
    assert "already scored" in capsys.readouterr().err
    assert len(Store(cli.db).entries("golden-box")) == 1
    assert cli("render", "--out", str(tmp_path / "site"), "--no-plots") == 0
    assert "Lab" in (tmp_path / "site" / "golden-box.html").read_text()


def test_bad_file_is_one_line_and_changes_nothing(cli, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    # The second record lacks its caption (a file with no caption at all is another error).
    bad.write_text('[{"image_id": 18, "track_id": 1, "bbox": [0, 0, 1, 1], "score": 0.9, '
                   '"caption": "a dog"}, '
                   '{"image_id": 18, "track_id": 2, "bbox": [0, 0, 1, 1], "score": 0.9}]')
    code = cli("score", str(bad), "--track", "golden-box", "--team", "Lab", "--method", "M")
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("error: bad.json: record predictions[1], field 'caption': missing field\n")
    assert Store(cli.db).entries("golden-box") == []


def test_unknown_track_lists_the_known_ones(cli, data_dir, capsys):
    assert cli("validate", str(data_dir / "pred.json"), "--track", "nope") == 2
    assert "unknown track 'nope'; known tracks: golden-box, golden-mask, vidstg-val-box" in \
        capsys.readouterr().err


def test_validate_prints_a_receipt(cli, data_dir, capsys):
    assert cli("validate", str(data_dir / "pred.json"), "--track", "golden-mask") == 0
    assert "valid for golden-mask: 29 records, 29 detections on 3/3 videos" in capsys.readouterr().out


def test_bundled_registry_has_the_tracks_of_the_issue():
    tracks = load_tracks()
    assert list(tracks) == ["vidstg-val-box", "vln-val-box", "vln-val-mask", "bensmot-val-box",
                            "lvviscap-val-box", "lvviscap-val-mask", "sample-box", "sample-mask"]
    assert tracks["vidstg-val-box"].chota_kwargs() == {
        "iou": "box", "alphas": (0.5,), "caption_metrics": ("cider", "meteor", "spice"),
        "score_threshold": 0.5, "protocol": "reference"}
    assert tracks["sample-mask"].gt == sample_paths().gt


@pytest.mark.skipif(not sample_paths().gt.exists(), reason="bundled sample data not generated")
def test_sample_track_ranks_good_fair_poor(tmp_path):
    # The sample protocol adds METEOR (Java); CIDEr alone keeps this test fast and Java-free.
    track = dataclasses.replace(load_tracks()["sample-box"], caption_metrics=("cider",))
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    for quality in reversed(SAMPLE_QUALITIES):
        score_submission(sample_paths().submissions[quality], track, store=store, team="Sample",
                         method=quality, with_alpha_curve=False)
    ranking = store.ranking("sample-box")
    assert [(rank, e.method) for rank, e in ranking] == [(1, "good"), (2, "fair"), (3, "poor")]
    chota = [e.metrics["CHOTA"] for _, e in ranking]
    assert chota[0] > chota[1] > chota[2] > 0


def test_missing_ground_truth_says_where_it_is_expected(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVOC_DATA", str(tmp_path / "nowhere"))
    code = main(["score", str(data_dir / "pred.json"), "--track", "vidstg-val-box", "--team", "A",
                 "--method", "M", "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert code == 2
    assert (f"the ground truth of track 'vidstg-val-box' is not installed: expected "
            f"{tmp_path / 'nowhere' / 'vidstg' / 'val_dvoc.json'}") in capsys.readouterr().err


def test_python_dash_m_leaderboard_runs_the_cli(data_dir):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "leaderboard", "tracks", "--tracks",
                           str(data_dir / "tracks.yaml")], cwd=root, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "golden-box" in done.stdout


def test_score_table_is_whole_when_piped(cli, data_dir, capsys, monkeypatch):
    # not a terminal: rich would fit $COLUMNS (or 80) and wrap the table; piped, it is whole
    monkeypatch.setenv("COLUMNS", "20")
    assert cli("score", str(data_dir / "pred.json"), "--track", "golden-box", "--team", "Lab",
               "--method", "Golden", "--no-progress") == 0
    lines = capsys.readouterr().out.splitlines()
    # narrow, rich cut the long names ('TP_wit…') and wrapped the rows
    assert any(re.fullmatch(r"│ TP_with_caps\s+│\s+\d+ │", line) for line in lines), lines
    assert any(re.fullmatch(r"│ CapA-cider\s+│\s+\d\.\d{4} │", line) for line in lines), lines


def test_score_leaves_no_progress_line_on_a_non_terminal(cli, data_dir, capsys):
    assert cli("score", str(data_dir / "pred.json"), "--track", "golden-box", "--team", "Lab",
               "--method", "Golden") == 0
    err = capsys.readouterr().err
    assert "matching" not in err and "\r" not in err, err
