"""Fixtures of the leaderboard tests: a test track registry over the golden case
visible_small (copied into tests/data/leaderboard) and a fresh SQLite store per test."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from pathlib import Path

import pytest

from leaderboard.store import Store
from leaderboard.tracks import load_tracks

DATA = Path(__file__).resolve().parents[1] / "data" / "leaderboard"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def tracks():
    return load_tracks(DATA / "tracks.yaml")


@pytest.fixture(scope="session")
def gt_json() -> dict:
    return json.loads((DATA / "gt.json").read_text())


@pytest.fixture
def preds() -> list:
    return json.loads((DATA / "pred.json").read_text())


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'lb.db'}")


@pytest.fixture
def write_json(tmp_path):
    """Write an object as a JSON submission file; returns its path."""
    def write(obj, name="sub.json") -> Path:
        path = tmp_path / name
        path.write_text(json.dumps(obj))
        return path
    return write


@pytest.fixture
def pred_file(tmp_path) -> Path:
    path = tmp_path / "pred.json"
    shutil.copy(DATA / "pred.json", path)
    return path


def _create_store(url, barrier, queue):
    barrier.wait(timeout=60)
    try:
        Store(url)
        queue.put("ok")
    except Exception as exc:  # reported to the test, which names it
        queue.put(f"{type(exc).__name__}: {exc}")


def _create_at_once(url: str, processes: int = 20) -> list[str]:
    """Open a fresh store at ``url`` from ``processes`` forked processes released together;
    returns each one's outcome ("ok" or the exception it raised)."""
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_create_store, args=(url, barrier, queue)) for _ in range(processes)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results


@pytest.fixture
def create_at_once():
    """The store-creation race: every process finds no tables and creates them at once."""
    return _create_at_once
