"""Append-only JSONL cache of VLM answers, so that a crash or a rerun never pays twice.

Every answered or failed object is one JSON line, written with flush + fsync as soon as it
is known. Lines are never rewritten. A line torn by a crash (the last one, or one that a
later run appended after) is skipped and counted in ``torn_lines``; the object it was about
is simply asked again. The key is ``dataset | annotation id | prompt id | model``, so a prompt
change (``PROMPT_VERSION``) or another model gets fresh answers while the old ones stay.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cache.jsonl"
    >>> cache = CaptionCache(path)
    >>> key = cache_key("lvvis", "7", "v1/boxes", "gemini-2.0-flash")
    >>> cache.append({"key": key, "status": "ok", "caption": "A cat sleeps."})
    >>> CaptionCache(path).get(key)["caption"]
    'A cat sleeps.'
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator

from benchmark.errors import InputError


def cache_key(dataset: str, annotation_id: str, prompt_id: str, model: str) -> str:
    """The identity of one answer."""
    return f"{dataset}|{annotation_id}|{prompt_id}|{model}"


class CaptionCache:
    """Records by key; for each key the last ``ok`` record wins, else the last record."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.torn_lines = 0
        self._records: dict[str, list[dict]] = {}
        self._lock = threading.Lock()
        if self.path.exists():
            self._load()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def _load(self) -> None:
        data = self.path.read_bytes()
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self.torn_lines += 1
                continue
            if not isinstance(record, dict) or "key" not in record:
                raise InputError("a cache line without a 'key'", source=str(self.path), field="key")
            self._records.setdefault(record["key"], []).append(record)
        if data and not data.endswith(b"\n"):
            # Isolate a torn tail so that the next record starts on its own line.
            with open(self.path, "ab") as handle:
                handle.write(b"\n")

    def get(self, key: str) -> dict | None:
        """The record that answers ``key``, or ``None``."""
        records = self._records.get(key)
        if not records:
            return None
        return next((r for r in reversed(records) if r.get("status") == "ok"), records[-1])

    def history(self, key: str) -> list[dict]:
        """Every record of ``key``, oldest first (each answered one was paid for)."""
        return list(self._records.get(key, ()))

    def __iter__(self) -> Iterator[dict]:
        for records in self._records.values():
            yield from records

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (thread-safe)."""
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self._records.setdefault(record["key"], []).append(record)
