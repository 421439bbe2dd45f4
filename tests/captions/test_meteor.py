"""METEOR: per-pair equality with pycocoevalcap's Meteor, line breaks, tool errors."""

from __future__ import annotations

import random
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from benchmark.captions import CaptionScorerError, MeteorScorer, has_line_break, replace_line_breaks
from benchmark.errors import ToolMissingError

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="no java on PATH")

TRICKY = [
    ("A man, riding a horse!", "a man rides a horse."),
    ("a dog", "a  dog   ||| runs"),  # '|||' and runs of spaces: pycocoevalcap's cleaning
    ("café au lait on the table", "a café on a table"),
    ("东京 tower at night", "a tower in 东京"),
    ("a cat", ""),
    ("", "a cat"),
    ("The Man In Red", "the man in red"),
    ("it's a man's hat", "it is a hat of the man"),
]


@pytest.fixture(scope="module")
def ours():
    with MeteorScorer() as scorer:
        yield scorer


@pytest.fixture(scope="module")
def reference():
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    yield lambda refs, cands: np.asarray(
        meteor.compute_score({i: [r] for i, r in enumerate(refs)}, {i: [c] for i, c in enumerate(cands)})[1]
    )


@pytest.mark.java
@needs_java
def test_equal_to_pycocoevalcap(ours, reference):
    rng = random.Random(3)
    vocab = "a man the woman is riding rides horse dog cat running on grass red blue Man. , ! two dogs".split()
    refs = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 12))) for _ in range(50)]
    cands = [" ".join(rng.choice(vocab) for _ in range(rng.randint(1, 12))) for _ in range(50)]
    refs += [r for r, _ in TRICKY]
    cands += [c for _, c in TRICKY]
    got = ours.score(refs, cands)
    want = reference(refs, cands)
    assert np.array_equal(got, want)
    assert np.count_nonzero(got) > 40 and len(np.unique(got)) > 20  # real scores, not a constant


@pytest.mark.java
@needs_java
def test_line_breaks_scored_as_spaces(ours, reference):
    got = ours.score(["a dog\nruns on grass", "a cat"], ["a dog runs\r\non the grass", "a\rcat"])
    want = reference(["a dog runs on grass", "a cat"], ["a dog runs on the grass", "a cat"])
    assert np.array_equal(got, want)
    assert got[1] > 0.9  # "a\rcat" is "a cat": the stdio protocol stayed in step


@pytest.mark.java
@needs_java
def test_more_pairs_than_one_chunk(ours, reference):
    refs = [f"a man number {i} rides a horse" for i in range(230)]
    cands = [f"a man {i} riding horses" for i in range(230)]
    assert np.array_equal(ours.score(refs, cands), reference(refs, cands))


@pytest.mark.java
@needs_java
def test_close_stops_the_jvm():
    scorer = MeteorScorer()
    proc = scorer._proc
    scorer.close()
    scorer.close()  # twice is fine
    assert proc.poll() is not None
    with pytest.raises(RuntimeError, match="closed"):
        scorer.score(["a"], ["a"])


def test_line_break_helpers():
    assert has_line_break("a\ndog") and has_line_break("a\rdog") and not has_line_break("a dog")
    assert replace_line_breaks("a\r\ndog\n") == "a  dog "


def test_missing_java_names_metric_and_fix():
    with pytest.raises(ToolMissingError, match=r"METEOR.*/no/such/java.*apt-get install default-jre"):
        MeteorScorer(java="/no/such/java")


def fake_java(tmp_path: Path, body: str) -> str:
    script = tmp_path / "java"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_jvm_dying_mid_run_is_an_error_with_its_stderr(tmp_path):
    # Answers one SCORE line, then dies: the scorer must say so, with stderr, not return 0.
    java = fake_java(tmp_path, 'read line; echo "1 2 3"; echo "java.lang.OutOfMemoryError: boom" >&2; exit 3\n')
    with MeteorScorer(java=java) as scorer:
        with pytest.raises(CaptionScorerError, match=r"stopped answering \(exit status 3\).*OutOfMemoryError: boom"):
            scorer.score(["a", "b", "c"], ["a", "b", "c"])


def test_garbage_answer_is_an_error(tmp_path):
    java = fake_java(tmp_path, 'while read line; do echo "not-a-number"; done\n')
    with MeteorScorer(java=java) as scorer:
        with pytest.raises(CaptionScorerError, match="answered .not-a-number. instead of statistics"):
            scorer.score(["a"], ["a"])


@pytest.mark.java
@needs_java
def test_threads_share_one_jvm(ours):
    from concurrent.futures import ThreadPoolExecutor

    jobs = [([f"a man {i} rides a horse"] * 30, [f"a man riding {j} horses" for j in range(30)]) for i in range(6)]
    expected = [ours.score(r, c) for r, c in jobs]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda job: ours.score(*job), jobs))
    for g, e in zip(got, expected):
        assert np.array_equal(g, e)


def test_java_that_cannot_run_is_a_tool_error(tmp_path):
    not_executable = tmp_path / "java"
    not_executable.write_text("")
    not_executable.chmod(0o755)  # executable bit, but no interpreter line: exec fails
    with pytest.raises(ToolMissingError, match="METEOR could not start"):
        MeteorScorer(java=str(not_executable))
