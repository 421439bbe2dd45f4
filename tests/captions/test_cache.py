"""PairScoreCache: round trips, persistence, NaN, concurrency, corruption."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from benchmark.captions import PairScoreCache
from benchmark.captions.cache import default_cache_path


def test_round_trip_misses_and_metric_separation():
    with PairScoreCache(":memory:") as cache:
        cache.put_many("meteor-1.5:abc", [("a dog", "a cat"), ("x", "y")], [0.25, 0.5])
        hits = cache.get_many("meteor-1.5:abc", [("a dog", "a cat"), ("x", "y"), ("x", "z")])
        assert hits == {("a dog", "a cat"): 0.25, ("x", "y"): 0.5}
        # Another scorer version sees nothing: stale scores are never served.
        assert cache.get_many("meteor-1.5:def", [("a dog", "a cat")]) == {}
        cache.put_many("meteor-1.5:abc", [("x", "y")], [0.75])  # replaces
        assert cache.get_many("meteor-1.5:abc", [("x", "y")]) == {("x", "y"): 0.75}


def test_nan_is_a_hit_not_a_miss():
    with PairScoreCache(":memory:") as cache:
        cache.put_many("spice", [("a", "")], [math.nan])
        hits = cache.get_many("spice", [("a", "")])
        assert list(hits) == [("a", "")] and math.isnan(hits[("a", "")])


def test_persists_across_instances(tmp_path):
    path = tmp_path / "sub" / "scores.sqlite"
    with PairScoreCache(path) as cache:
        cache.put_many("m", [("r", "c")], [0.125])
    with PairScoreCache(path) as cache:
        assert cache.get_many("m", [("r", "c")]) == {("r", "c"): 0.125}


def test_default_path_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path))
    assert default_cache_path() == tmp_path / "caption_scores.sqlite"
    with PairScoreCache() as cache:
        cache.put_many("m", [("r", "c")], [1.0])
    assert (tmp_path / "caption_scores.sqlite").is_file()


def test_bad_batch_stores_nothing(tmp_path):
    with PairScoreCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(ValueError):
            cache.put_many("m", [("a", "b"), ("c", "d")], [0.5])  # one score short
        with pytest.raises(TypeError):
            cache.put_many("m", [("a", "b"), ("c", "d")], [0.5, "high"])
        assert cache.get_many("m", [("a", "b"), ("c", "d")]) == {}


def test_corrupt_file_is_moved_aside(tmp_path):
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not an sqlite database at all" * 100)
    with pytest.warns(RuntimeWarning, match="unreadable"):
        cache = PairScoreCache(path)
    with cache:
        assert cache.get_many("m", [("a", "b")]) == {}
        cache.put_many("m", [("a", "b")], [0.5])
        assert cache.get_many("m", [("a", "b")]) == {("a", "b"): 0.5}
    aside = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")


# Separate interpreters (not forks): each opens its own SQLite connection, as separate
# scorer processes would. The script imports only the installed package.
_WRITER = """
import sys
from benchmark.captions.cache import PairScoreCache
path, worker = sys.argv[1], int(sys.argv[2])
cache = PairScoreCache(path)
for batch in range(20):
    pairs = [(f"ref {worker}", f"cand {batch} {i}") for i in range(25)]
    cache.put_many("m", pairs, [worker + batch / 100 + i / 10000 for i in range(25)])
cache.close()
"""


def test_several_processes_write_concurrently(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    PairScoreCache(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, path, str(w)]) for w in range(3)]
    for p in procs:
        assert p.wait(60) == 0
    with PairScoreCache(path) as cache:
        for w in range(3):
            pairs = [(f"ref {w}", f"cand {b} {i}") for b in range(20) for i in range(25)]
            hits = cache.get_many("m", pairs)
            assert len(hits) == 500
            assert hits[(f"ref {w}", "cand 19 24")] == pytest.approx(w + 0.19 + 0.0024)


def test_knows_any_reference_tells_first_runs_from_reruns(tmp_path):
    with PairScoreCache(tmp_path / "c.sqlite") as cache:
        assert not cache.knows_any_reference("meteor-x")
        cache.put_many("meteor-x", [("a dog", "a cat")], [0.4])
        assert cache.knows_any_reference("meteor-x")
        assert not cache.knows_any_reference("meteor-y")
        assert cache.knows_any_reference("meteor-x", ["a bird", "a dog"])
        assert not cache.knows_any_reference("meteor-x", ["a cat"])  # a candidate, not a ref


def test_text_that_is_not_valid_unicode_is_never_stored_and_never_raises():
    bad = "a \ud800 dog"  # a lone surrogate: UTF-8, and so SQLite, cannot hold it
    with PairScoreCache(":memory:") as cache:
        cache.put_many("m", [(bad, "x"), ("a dog", bad), ("a dog", "a cat")], [0.5, 0.25, 0.75])
        assert cache.get_many("m", [(bad, "x"), ("a dog", bad), ("a dog", "a cat")]) == {
            ("a dog", "a cat"): 0.75}
        assert cache.knows_any_reference("m", [bad]) is False
        assert cache.knows_any_reference("m", [bad, "a dog"]) is True
