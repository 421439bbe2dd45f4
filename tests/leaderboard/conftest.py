"""Fixtures of the leaderboard tests: a test track registry over the golden case
visible_small (copied into tests/data/leaderboard) and a fresh SQLite store per test."""

from __future__ import annotations

import json
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
