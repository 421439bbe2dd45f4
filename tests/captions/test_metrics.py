"""CaptionMetrics: metric names, cache-first scoring, JVM started only when needed."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import benchmark.captions as captions
from benchmark.captions import CaptionMetrics, CaptionScorerError, PairScoreCache, cider_d
from benchmark.errors import InputError, ToolMissingError

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH")


def test_unknown_metric_lists_valid_ones():
    with pytest.raises(InputError, match=r"'bleu'.*valid: cider, meteor, spice") as err:
        CaptionMetrics(("cider", "bleu"), cache=":memory:")
    assert err.value.field == "caption_metrics"


def test_cider_through_the_facade_matches_cider_d():
    refs, cands, counts = ["a man runs", "a dog sits", "a man"], ["a man runs", "a cat", "man"], [2, 1, 3]
    with CaptionMetrics(("cider",), cache=":memory:") as metrics:
        np.testing.assert_array_equal(metrics.cider(refs, cands, counts), cider_d(refs, cands, counts))
        with pytest.raises(ValueError, match="use cider"):
            metrics.score("cider", refs, cands)
        with pytest.raises(ValueError, match="not one of this run's metrics"):
            metrics.score("meteor", refs, cands)


def test_cached_pairs_need_no_jvm():
    cache = PairScoreCache(":memory:")
    # java is missing on purpose: if a JVM were needed, this would raise ToolMissingError.
    metrics = CaptionMetrics(("meteor",), cache=cache, java="/no/such/java", meteor_engine="java")
    metric_id = metrics.metric_id("meteor")
    cache.put_many(metric_id, [("a dog", "a cat"), ("x", "y")], [0.25, 0.5])
    metrics.prepare([("a dog", "a cat"), ("x", "y")])
    got = metrics.score("meteor", ["x", "a dog", "x"], ["y", "a cat", "y"])
    assert got.tolist() == [0.5, 0.25, 0.5]
    # Candidates are a superset: one cached pair means a re-run, so nothing starts yet...
    metrics.prepare([("a dog", "a cat"), ("new", "pair")])
    # ...and the exact pairs decide: a pair really missing needs the JVM.
    with pytest.raises(ToolMissingError, match="METEOR needs Java"):
        metrics.score("meteor", ["new"], ["pair"])
    # New predictions (no candidate cached) start the JVM at once, so Java is checked now.
    with pytest.raises(ToolMissingError, match="METEOR needs Java"):
        metrics.prepare([("new", "pair"), ("other", "one")])
    metrics.close()
    cache.close()


def test_python_meteor_needs_no_java_and_keeps_its_own_cache_entries():
    cache = PairScoreCache(":memory:")
    with CaptionMetrics(("meteor",), cache=cache, java="/no/such/java") as metrics:
        assert metrics.meteor_engine == "python"
        metrics.prepare([("a man rides a horse", "a man riding a horse")])
        got = metrics.score("meteor", ["a man rides a horse", "a dog"], ["a man riding a horse", "a dog"])
        python_id = metrics.metric_id("meteor")
    assert got[1] == 1.0 and 0 < got[0] < 1
    assert python_id.startswith("meteor-1.5-python-v") and cache.get_many(python_id, [("a dog", "a dog")])
    # The jar's scores are stored under the jar's own key: engines never read each other's.
    assert CaptionMetrics(("meteor",), cache=cache, meteor_engine="java").metric_id("meteor") != python_id
    with pytest.raises(InputError, match="meteor_engine must be one of python, java"):
        CaptionMetrics(("meteor",), cache=cache, meteor_engine="perl")
    cache.close()


def test_spice_tools_are_checked_in_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BENCHMARK_CORENLP_DIR", raising=False)
    with CaptionMetrics(("spice",), cache=":memory:", corenlp_dir=tmp_path / "none") as metrics:
        with pytest.raises(ToolMissingError, match="benchmark fetch-spice"):
            metrics.prepare([("a", "b")])


@pytest.mark.parametrize("engine", [
    "python", pytest.param("java", marks=[pytest.mark.java, needs_java])])
def test_meteor_scores_are_cached_across_runs(tmp_path, engine):
    path = tmp_path / "scores.sqlite"
    refs = ["a man rides a horse", "two dogs play", "a man rides a horse"]
    cands = ["a man riding a horse", "dogs playing", "a man riding a horse"]
    with CaptionMetrics(("meteor",), cache=path, meteor_engine=engine) as first:
        first.prestart()
        first.prepare(zip(refs, cands))
        # The jar's JVM starts early because nothing was cached; Python starts when it scores.
        assert (first._meteor is not None) == (engine == "java")
        assert first.jvm_metrics == (("meteor",) if engine == "java" else ())
        scores = first.score("meteor", refs, cands)
    assert scores[0] == scores[2] and 0 < scores[1] < scores[0] < 1
    with CaptionMetrics(("meteor",), cache=path, meteor_engine=engine) as second:
        second.prepare(zip(refs, cands))
        again = second.score("meteor", refs, cands)
        assert second._meteor is None  # everything came from the cache: no scorer at all
    np.testing.assert_array_equal(again, scores)


@pytest.fixture
def fake_spice(monkeypatch, fake_spice_jar):
    """CaptionMetrics builds SpiceScorers on the fake jar; returns the list of scored batches."""
    batches: list[list[str]] = []

    class CountingSpice(captions.SpiceScorer):
        def __init__(self, **kwargs):
            super().__init__(spice_jar=fake_spice_jar, use_launcher=False, **kwargs)

        def score(self, refs, cands):
            batches.append(list(cands))
            return super().score(refs, cands)

    monkeypatch.setattr(captions, "SpiceScorer", CountingSpice)
    return batches


@pytest.mark.java
def test_spice_prefetch_in_prepare_then_cache(fake_spice, corenlp):
    candidates = [("a man rides a horse", "a man on a horse"), ("two dogs run", "a cat"), ("a dog", "a dog runs")]
    with CaptionMetrics(("spice",), cache=":memory:", corenlp_dir=corenlp) as metrics:
        metrics.prepare(candidates)
        # Two matched pairs out of the candidates, one repeated, plus one nobody predicted.
        got = metrics.score(
            "spice",
            ["a man rides a horse", "two dogs run", "a man rides a horse", "red car"],
            ["a man on a horse", "a cat", "a man on a horse", ""],
        )
    np.testing.assert_array_equal(got, [0.75, 0.0, 0.75, np.nan])
    # One background run for the three candidates, one more for the single unknown pair.
    assert fake_spice == [["a man on a horse", "a cat", "a dog runs"], [""]]


@pytest.mark.java
def test_spice_prefetch_failure_is_raised_by_score(fake_spice, corenlp):
    with CaptionMetrics(("spice",), cache=":memory:", corenlp_dir=corenlp) as metrics:
        metrics.prepare([("a", "CRASH")])
        with pytest.raises(CaptionScorerError, match="boom"):
            metrics.score("spice", ["a"], ["CRASH"])


@pytest.mark.java
def test_close_stops_an_abandoned_spice_run(fake_spice, corenlp):
    import time

    metrics = CaptionMetrics(("spice",), cache=":memory:", corenlp_dir=corenlp)
    metrics.prepare([("a", "SLEEP")])  # the fake hangs for two minutes on this pair
    time.sleep(1.0)  # let the JVM start
    start = time.perf_counter()
    metrics.close()
    assert time.perf_counter() - start < 10


@pytest.mark.java
def test_a_chota_run_starts_one_spice_jvm(fake_spice, corenlp):
    """The candidate pairs prefetched in prepare() hold every pair the run scores, so the
    whole run starts SPICE once (a JVM plus CoreNLP: the costly part of SPICE)."""
    from pathlib import Path

    from benchmark import chota

    golden = Path(__file__).parents[1] / "data" / "golden" / "visible_medium"
    result = chota(golden / "gt.json", golden / "pred.json", caption_metrics=("cider", "spice"),
                   corenlp_dir=corenlp, cache=None)
    assert len(fake_spice) == 1 and fake_spice[0]
    assert 0 <= result["CapA-spice"] <= 1
