"""From file to stored entry with the real scorer (CIDEr only: no Java), checked against the
reference scorer's output on the golden case (expected.json)."""

from __future__ import annotations

import copy
import gzip
import json
import multiprocessing
import zipfile

import numpy as np
import pytest

import benchmark
from benchmark.errors import InputError
from leaderboard.service import score_submission
from leaderboard.store import Store

FIELDS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA",
          "CapA-cider", "HOTA_TP", "HOTA_FN", "HOTA_FP", "TP_with_caps")


@pytest.fixture(scope="module")
def expected(data_dir):
    return json.loads((data_dir / "expected.json").read_text())


@pytest.mark.parametrize("iou", ["box", "mask"])
def test_scores_match_the_reference_scorer(iou, tracks, store, pred_file, expected):
    outcome = score_submission(pred_file, tracks[f"golden-{iou}"], store=store, team="T",
                               method="M", description="golden")
    assert outcome.created
    metrics = outcome.entry.metrics
    for field in FIELDS:
        assert metrics[field] == pytest.approx(expected[f"{iou}/alpha0.5"][field], rel=1e-5), field
    # The 19-alpha curve averages to the reference's 19-alpha numbers.
    curve = outcome.entry.alpha_curve
    assert len(curve["alphas"]) == 19 and curve["alphas"][0] == 0.05
    for field in ("HOTA", "DetA", "AssA"):
        assert np.mean(curve[field]) == pytest.approx(expected[f"{iou}/alphas19"][field], rel=1e-5)
    entry = outcome.entry
    assert entry.protocol["iou"] == iou and entry.protocol["official"] is False
    assert entry.package_version == benchmark.__version__
    assert entry.checksum.startswith("sha256:") and entry.submission_name == "pred.json"
    videos = store.video_results(entry.id)
    assert videos["video_id"].tolist() == [1, 2, 3]
    assert videos["HOTA_TP"].sum() == expected[f"{iou}/alpha0.5"]["HOTA_TP"]
    assert "_stats" not in videos.columns
    # The scorer's per-video statistics are stored: all-ones weights give the entry's fields back.
    from benchmark.scoring import resample_fields

    ids, stats = store.video_stats(entry.id)
    assert ids == [1, 2, 3]
    again = resample_fields(stats, entry.protocol["caption_metrics"], np.ones(3))
    for field in FIELDS:
        assert float(again[field]) == pytest.approx(metrics[field], rel=1e-12), field


def test_resubmitting_the_same_content_adds_no_row(tracks, store, pred_file, tmp_path):
    track = tracks["golden-box"]
    first = score_submission(pred_file, track, store=store, team="T", method="M",
                             with_alpha_curve=False)
    zipped = tmp_path / "again.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(pred_file, "submission/pred.json")
    gz = tmp_path / "again.json.gz"
    gz.write_bytes(gzip.compress(pred_file.read_bytes()))
    for path in (zipped, gz):
        again = score_submission(path, track, store=store, team="Other", method="X")
        assert not again.created and again.entry.id == first.entry.id
        assert "already scored" in again.warnings[0]
    assert len(store.entries("golden-box")) == 1


def test_invalid_submission_stores_nothing(tracks, store, preds, write_json):
    bad = copy.deepcopy(preds)
    bad[12]["image_id"] = 4242
    with pytest.raises(InputError, match=r"sub.json: record predictions\[12\], field 'image_id'"):
        score_submission(write_json(bad), tracks["golden-box"], store=store, team="T", method="M")
    assert store.entries("golden-box") == []


def test_crash_during_scoring_leaves_no_row(tracks, store, pred_file, monkeypatch):
    def crash(*_args, **_kwargs):
        raise MemoryError("scorer died")

    monkeypatch.setattr(benchmark, "chota", crash)
    with pytest.raises(MemoryError):
        score_submission(pred_file, tracks["golden-box"], store=store, team="T", method="M")
    assert store.entries("golden-box") == []


def test_team_and_method_are_required(tracks, store, pred_file):
    with pytest.raises(InputError, match="a team name is required"):
        score_submission(pred_file, tracks["golden-box"], store=store, team=" ", method="M")


@pytest.mark.parametrize("team, method, description, message", [
    ("T" * 201, "M", "", "field 'team': has 201 characters, above the 200 limit"),
    ("T", "M" * 301, "", "field 'method': has 301 characters, above the 300 limit"),
    ("T\x00eam", "M", "", r"field 'team': holds a NUL character \(\\x00\) at position 1"),
    ("T", "Me\x00", "", r"field 'method': holds a NUL character \(\\x00\) at position 2"),
    ("T", "M", "a\x00", r"field 'description': holds a NUL character"),
    ("T\udcff", "M", "", r"field 'team': is not valid Unicode: '\\udcff' at position 1"),
])
def test_names_the_store_cannot_hold_are_refused_before_scoring(
        tracks, store, pred_file, monkeypatch, team, method, description, message):
    # PostgreSQL refused these only when storing, after minutes of scoring; SQLite kept them.
    def scored(*_args, **_kwargs):
        raise AssertionError("scored a submission whose names cannot be stored")

    monkeypatch.setattr(benchmark, "chota", scored)
    with pytest.raises(InputError, match=message):
        score_submission(pred_file, tracks["golden-box"], store=store, team=team,
                         method=method, description=description)
    assert store.entries("golden-box") == []


def test_longest_names_and_an_odd_file_name_are_stored(tracks, store, preds, tmp_path):
    # The limits are the columns' sizes, inclusive; the upload's file name is informational:
    # bytes that are not UTF-8 and a path over 300 characters are stored escaped / shortened.
    folder = tmp_path / ("d" * 200) / ("e" * 200)
    folder.mkdir(parents=True)
    path = folder / "pred\udcff.json"          # the file system name b"pred\xff.json"
    path.write_text(json.dumps(preds))
    with zipfile.ZipFile(tmp_path / "long.zip", "w") as zf:
        zf.write(path, f"{'d' * 200}/{'e' * 200}/pred.json")
    team, method = " " + "T" * 200 + " ", "M" * 300
    first = score_submission(path, tracks["golden-box"], store=store, team=team, method=method,
                             with_alpha_curve=False)
    assert first.created and first.entry.team == "T" * 200 and first.entry.method == method
    assert first.entry.submission_name == "pred\\udcff.json"
    zipped = score_submission(tmp_path / "long.zip", tracks["golden-box"], store=store,
                              team="Z", method="M", with_alpha_curve=False)
    assert not zipped.created      # same JSON bytes: the first entry, not a new row
    renamed = copy.deepcopy(preds)
    renamed[0]["score"] = 0.61
    with zipfile.ZipFile(tmp_path / "long2.zip", "w") as zf:
        zf.writestr(f"{'d' * 200}/{'e' * 200}/pred.json", json.dumps(renamed))
    second = score_submission(tmp_path / "long2.zip", tracks["golden-box"], store=store,
                              team="Z", method="M", with_alpha_curve=False)
    name = second.entry.submission_name
    assert second.created and len(name) == 300
    assert name.startswith("...") and name.endswith("/" + "e" * 200 + "/pred.json")
    assert len(store.entries("golden-box")) == 2


def _score_in_child(url, path, track, team, queue):
    outcome = score_submission(path, track, store=Store(url), team=team, method="M",
                               with_alpha_curve=False)
    queue.put((team, outcome.entry.id, outcome.created))


def test_twenty_concurrent_processes_all_land_once(tracks, tmp_path, preds):
    url = f"sqlite:///{tmp_path / 'concurrent.db'}"
    Store(url)  # schema first, as a deployed board has it
    paths = []
    for k in range(20):
        variant = copy.deepcopy(preds)
        variant[0]["score"] = round(0.6 + 0.01 * k, 3)  # distinct content, distinct checksum
        path = tmp_path / f"team{k}.json"
        path.write_text(json.dumps(variant))
        paths.append(path)
    jobs = [(f"team{k}", paths[k]) for k in range(20)] + [(f"dup{k}", paths[k]) for k in range(4)]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_score_in_child, args=(url, p, tracks["golden-box"], team, queue))
             for team, p in jobs]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    entries = Store(url).entries("golden-box")
    assert len(entries) == 20
    assert len({e.checksum for e in entries}) == 20
    created = [r for r in results if r[2]]
    assert len(created) == 20
    # Each duplicate got back the entry of the same file, whoever stored it first.
    by_checksum = {e.id: e.checksum for e in entries}
    ids = {team: entry_id for team, entry_id, _ in results}
    for k in range(4):
        assert by_checksum[ids[f"dup{k}"]] == by_checksum[ids[f"team{k}"]]
