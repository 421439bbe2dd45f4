"""The one atomic writer: complete files or the old file, never a temp file left behind."""

from __future__ import annotations

import json
import os
import stat

import pytest

from benchmark import atomic
from benchmark.atomic import atomic_write_bytes, atomic_write_text, write_json_atomic


def test_writes_creates_parents_and_is_world_readable(tmp_path):
    out = tmp_path / "a" / "b" / "scores.json"
    assert write_json_atomic({"caption": "un café", "x": [1, 2]}, out, indent=1) == out
    assert json.loads(out.read_text(encoding="utf-8")) == {"caption": "un café", "x": [1, 2]}
    assert "café" in out.read_text(encoding="utf-8")  # non-ASCII kept, not \u-escaped
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    atomic_write_text(out, "a,b\n1,2\n")
    assert out.read_bytes() == b"a,b\n1,2\n"


def test_failure_mid_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "page.html"
    atomic_write_bytes(target, b"old")

    def fail(*_args):
        raise OSError("disk full")

    # fsync runs after the new bytes went to the temporary file: the middle of the write.
    monkeypatch.setattr(atomic.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["page.html"]

    monkeypatch.undo()
    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(target, "newer")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["page.html"]


def test_unserialisable_json_changes_nothing(tmp_path):
    out = tmp_path / "gt.json"
    write_json_atomic({"ok": 1}, out)
    with pytest.raises(TypeError):
        write_json_atomic({"bad": object()}, out)
    assert json.loads(out.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["gt.json"]
