"""A persistent cache of per-pair caption scores (METEOR, SPICE), so that re-scoring known
(reference, candidate) pairs, as resubmissions and leaderboards do, skips the JVM.

Scores are keyed by (metric id, reference, candidate). The metric id carries the scorer's
version (a hash of its jar and its flags), so a changed scorer never reads stale scores.
The store is SQLite in WAL mode with a busy timeout: several processes may read and write it.
Text that is not valid Unicode (a lone surrogate such as ``"\\ud800"``, which UTF-8 and so
SQLite cannot hold) is never stored: such a pair is always a miss, is skipped by
:meth:`PairScoreCache.put_many` and never raises. (The loaders refuse such captions as input
errors, so only direct callers meet this.)

Example:
    >>> cache = PairScoreCache(":memory:")
    >>> cache.put_many("meteor-test", [("a dog", "a cat")], [0.25])
    >>> cache.get_many("meteor-test", [("a dog", "a cat"), ("x", "y")])
    {('a dog', 'a cat'): 0.25}
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmark.captions._java import user_cache_dir
from benchmark.errors import CaptionScorerError

__all__ = ["PairScoreCache", "default_cache_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pair_scores (
    metric TEXT NOT NULL,
    ref TEXT NOT NULL,
    cand TEXT NOT NULL,
    score REAL,  -- NULL stores NaN (SQLite has no NaN)
    PRIMARY KEY (metric, ref, cand)
) WITHOUT ROWID
"""


def _storable(text: str) -> bool:
    """Whether SQLite can store ``text`` (it encodes as UTF-8: no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def default_cache_path() -> Path:
    """``$BENCHMARK_CACHE_DIR/caption_scores.sqlite`` (default ``~/.cache/dvoc-benchmark``)."""
    return user_cache_dir() / "caption_scores.sqlite"


class PairScoreCache:
    """Per-pair caption scores in SQLite (``path=":memory:"`` keeps them in this process only).

    A file that is not a readable SQLite database is moved aside (``<name>.corrupt-<time>``)
    with a warning and a fresh cache is started: a broken cache costs time, never wrong scores.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout_s: float = 60.0) -> None:
        self.path = ":memory:" if str(path) == ":memory:" else Path(path or default_cache_path())
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            if self.path == ":memory:":
                raise
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.path, aside)
            warnings.warn(
                f"caption score cache {self.path} was unreadable ({exc}); moved it to {aside} "
                "and started an empty one",
                RuntimeWarning,
                stacklevel=2,
            )
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(self.path), timeout=self._timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            # Reading one row proves the table's pages are readable, not only the header.
            conn.execute("SELECT score FROM pair_scores LIMIT 1").fetchall()
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def get_many(self, metric_id: str, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """The cached scores among ``pairs`` (misses are absent; a stored NaN comes back NaN)."""
        hits: dict[tuple[str, str], float] = {}
        query = "SELECT score FROM pair_scores WHERE metric = ? AND ref = ? AND cand = ?"
        with self._lock, self._guard():
            for ref, cand in pairs:
                if not (_storable(ref) and _storable(cand)):
                    continue  # not valid Unicode: never stored, always a miss
                row = self._conn.execute(query, (metric_id, ref, cand)).fetchone()
                if row is not None:
                    hits[(ref, cand)] = math.nan if row[0] is None else float(row[0])
        return hits

    def knows_any_reference(self, metric_id: str, refs: Iterable[str] | None = None) -> bool:
        """Whether any pair of ``metric_id`` is cached (with one of ``refs`` as reference, when
        given; an index lookup each).

        Lets a scorer tell a first evaluation (start the JVM at once) from a re-evaluation
        (wait for the exact pairs before deciding).
        """
        with self._lock, self._guard():
            if refs is None:
                query = "SELECT 1 FROM pair_scores WHERE metric = ? LIMIT 1"
                return self._conn.execute(query, (metric_id,)).fetchone() is not None
            query = "SELECT 1 FROM pair_scores WHERE metric = ? AND ref = ? LIMIT 1"
            return any(self._conn.execute(query, (metric_id, ref)).fetchone() is not None
                       for ref in refs if _storable(ref))

    def put_many(self, metric_id: str, pairs: Sequence[tuple[str, str]], scores: Iterable[float]) -> None:
        """Store scores for ``pairs`` in one transaction (all or nothing); pairs whose text is
        not valid Unicode are skipped (see the module docstring)."""
        rows = [
            (metric_id, ref, cand, None if math.isnan(s) else float(s))
            for (ref, cand), s in zip(pairs, scores, strict=True)
            if _storable(ref) and _storable(cand)
        ]
        with self._lock, self._guard():
            # BEGIN IMMEDIATE takes the write lock up front: concurrent writers wait (busy
            # timeout) instead of failing halfway through.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT OR REPLACE INTO pair_scores VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn an SQLite failure mid-run into one clear error naming the cache file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise CaptionScorerError(
                f"caption score cache {self.path} failed ({exc}); delete it or set "
                "BENCHMARK_CACHE_DIR to another folder"
            ) from exc

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PairScoreCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

