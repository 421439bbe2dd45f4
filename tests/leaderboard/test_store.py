"""The store: dedup by checksum, transactional writes, reported vs scored rows, ranking."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from leaderboard.store import REPORTED, SCORED, Store, _Entry, _VideoResult


def _add(store, checksum, chota, *, track="t-box", hota=0.5, minutes=0, team="A"):
    return store.add_scored(
        track=track, team=team, method=f"m-{checksum}", checksum=checksum,
        protocol={"name": "test"}, metrics={"CHOTA": chota, "HOTA": hota, "DetA": 0.4},
        per_video=[{"video_id": 1, "video": "v1", "HOTA": hota}, {"video_id": 2, "HOTA": 0.1}],
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=minutes))


def _counts(store):
    with Session(store.engine) as s:
        return (s.scalar(select(func.count()).select_from(_Entry)),
                s.scalar(select(func.count()).select_from(_VideoResult)))


def test_same_checksum_adds_no_row(store):
    first, created = _add(store, "sha256:aa", 0.5)
    again, created_again = _add(store, "sha256:aa", 0.9, team="B")
    assert (created, created_again) == (True, False)
    assert again.id == first.id and again.team == "A" and again.metrics["CHOTA"] == 0.5
    other_track, created_other = _add(store, "sha256:aa", 0.5, track="u-box")
    assert created_other and other_track.id != first.id
    assert _counts(store) == (2, 4)


def test_per_video_rows_round_trip(store):
    entry, _ = _add(store, "sha256:v", 0.5, hota=0.7)
    frame = store.video_results(entry.id)
    assert frame["video_id"].tolist() == [1, 2]
    assert frame["HOTA"].tolist() == [0.7, 0.1]
    assert frame["video"].tolist()[0] == "v1"


def test_failed_write_leaves_nothing(store):
    def boom(*_args):
        raise RuntimeError("disk full while writing per-video rows")

    # Fails after the entry row was inserted in the same transaction.
    event.listen(_VideoResult, "before_insert", boom)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            _add(store, "sha256:bb", 0.5)
    finally:
        event.remove(_VideoResult, "before_insert", boom)
    assert _counts(store) == (0, 0)
    entry, created = _add(store, "sha256:bb", 0.5)
    assert created and _counts(store) == (1, 2)


def test_nan_metrics_are_dropped_not_stored(store):
    entry, _ = store.add_scored(track="t", team="A", method="m", checksum="sha256:n",
                                protocol={}, metrics={"CHOTA": float("nan"), "DetA": 0.3},
                                per_video=[])
    assert entry.metrics == {"DetA": 0.3}
    assert entry.metric("CHOTA") is None


def test_reported_rows_are_separate_and_idempotent(store):
    rows = [{"track": "t-box", "method": "Paper method", "team": "X et al.", "setting": "s",
             "metrics": {"CHOTA": 0.6}, "source": "paper, Table 3", "note": None}]
    assert store.seed_reported(rows) == 1
    assert store.seed_reported(rows) == 0
    _add(store, "sha256:1", 0.7)
    _add(store, "sha256:2", 0.5, minutes=1)
    assert [e.kind for e in store.entries("t-box", kind=REPORTED)] == [REPORTED]
    assert [e.checksum for e in store.entries("t-box", kind=SCORED)] == ["sha256:1", "sha256:2"]
    reported = store.entries("t-box", kind=REPORTED)[0]
    assert reported.checksum is None and reported.source == "paper, Table 3"
    assert reported.is_reported and reported.description == "s"


def test_reseeding_replaces_stale_reported_rows_and_keeps_scored_ones(store):
    old = [{"track": "t-box", "method": "Old name", "team": "X", "setting": "s",
            "metrics": {"CHOTA": 0.6}, "source": "paper, Table 3", "note": None},
           {"track": "other", "method": "Elsewhere", "team": "X", "metrics": {"CHOTA": 0.1},
            "source": "paper", "note": None}]
    assert store.seed_reported(old) == 2
    _add(store, "sha256:1", 0.7)
    new = [{"track": "t-box", "method": "New name", "team": "X", "setting": "s",
            "metrics": {"CHOTA": 0.6}, "source": "paper, Table 3, row 1", "note": "n"}]
    assert store.seed_reported(new, replace_tracks=["t-box"]) == 1
    assert [e.method for e in store.entries("t-box", kind=REPORTED)] == ["New name"]
    assert [e.checksum for e in store.entries("t-box", kind=SCORED)] == ["sha256:1"]
    assert [e.method for e in store.entries("other")] == ["Elsewhere"]  # not a replaced track
    assert store.seed_reported(new, replace_tracks=["t-box"]) == 0


def test_ranking_order_ties_and_reported_rows(store):
    store.seed_reported([{"track": "t-box", "method": "P", "team": "X", "metrics": {"CHOTA": 0.65},
                          "source": "paper", "note": None},
                         {"track": "t-box", "method": "Q", "team": "X", "metrics": {"DetA": 0.9},
                          "source": "paper", "note": None}])
    _add(store, "sha256:low", 0.4, minutes=0)
    _add(store, "sha256:tie-late", 0.7, hota=0.5, minutes=5)
    _add(store, "sha256:tie-early", 0.7, hota=0.5, minutes=1)
    _add(store, "sha256:tie-hota", 0.7, hota=0.6, minutes=9)
    _add(store, "sha256:top", 0.8, minutes=3)
    ranking = store.ranking("t-box")
    assert [(r, e.checksum or e.method) for r, e in ranking] == [
        (1, "sha256:top"), (2, "sha256:tie-hota"), (3, "sha256:tie-early"),
        (4, "sha256:tie-late"), (None, "P"), (5, "sha256:low"), (None, "Q")]
    by_deta = [e.method for _, e in store.ranking("t-box", metric="DetA")]
    assert by_deta[0] == "Q" and by_deta[-1] == "P"


def test_bare_path_is_a_sqlite_file(tmp_path):
    store = Store(str(tmp_path / "board.db"))
    _add(store, "sha256:f", 0.5)
    assert (tmp_path / "board.db").exists()
    assert len(Store(f"sqlite:///{tmp_path / 'board.db'}").entries("t-box")) == 1


def test_text_limits_hold_on_sqlite_too(store):
    # The columns' sizes are what PostgreSQL enforces; SQLite ignores them, so the store checks
    # them itself: the same file behaves the same on both databases.
    from benchmark.errors import InputError

    def add(**names):
        fields = {"team": "A", "method": "m", "description": "", "submission_name": None, **names}
        return store.add_scored(track="t", checksum=f"sha256:{len(store.entries('t'))}",
                                protocol={}, metrics={"CHOTA": 0.5}, per_video=[], **fields)

    entry, created = add(team="T" * 200, method="M" * 300, submission_name="s" * 300)
    assert created and (len(entry.team), len(entry.method), len(entry.submission_name)) == (
        200, 300, 300)
    for names, message in [
            ({"team": "T" * 201}, "field 'team': has 201 characters, above the 200 limit"),
            ({"method": "M" * 301}, "field 'method': has 301 characters, above the 300 limit"),
            ({"submission_name": "s" * 301},
             "field 'submission_name': has 301 characters, above the 300 limit"),
            ({"description": "x\x00"}, r"field 'description': holds a NUL character"),
            ({"method": "\ud800"},
             r"field 'method': is not valid Unicode: '\\ud800' at position 0")]:
        with pytest.raises(InputError, match=message):
            add(**names)
    with pytest.raises(InputError, match="field 'team': has 201 characters"):
        store.seed_reported([{"track": "t", "method": "P", "team": "X" * 201,
                              "metrics": {"CHOTA": 0.5}, "source": "paper", "note": None}])
    assert [e.team for e in store.entries("t")] == ["T" * 200]
    assert _counts(store) == (1, 0)


def test_fresh_store_created_by_twenty_processes_at_once(tmp_path, create_at_once):
    # All find no tables and create them at once: the losers must use the winner's schema.
    for round_ in range(3):
        url = f"sqlite:///{tmp_path / f'race{round_}.db'}"
        results = create_at_once(url)
        assert results == ["ok"] * 20, f"round {round_}: {sorted(set(results))}"
        store = Store(url)
        assert _add(store, "sha256:r", 0.5)[1] is True
        assert _counts(store) == (1, 2)
