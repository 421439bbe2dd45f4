"""METEOR 1.5 in Python against the jar it reproduces: the normaliser token for token, and
per-pair scores within 1e-9 on real captions (VidSTG), the golden cases' caption pairs and
adversarial pairs; plus the parts on hand-made cases (the score formula, Java hashes, the
synonym fallback, the paraphrase table and its cache, chunks)."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from benchmark.captions.meteor import MeteorScorer, default_meteor_jar
from benchmark.captions.meteor15 import PythonMeteor
from benchmark.captions.meteor15.align import Synonyms, align, count_chunks, java_hash
from benchmark.captions.meteor15.normalize import tokens
from benchmark.captions.meteor15.paraphrase import Match, ParaphraseTable, paraphrase_matches
from benchmark.captions.meteor15.resources import SynsetIndex
from benchmark.captions.meteor15.score import Stats, segment_score

DATA = Path(__file__).resolve().parents[1] / "data"
ORACLE = Path(__file__).resolve().parent / "oracle" / "NormalizeOracle.java"
needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java (the jar is the oracle)")

ADVERSARIAL_WORDS = [",", ".", "...", "!!", "?", "-", "--", "'", "''", '"', "'s", "n't", "1,000", "3.5", "2nd", "e.g.",
                     "U.S.", "Mr.", "No.", "5", "well-known", "T-shirt", "rock'n'roll", "\u201c", "\u201d", "\u2018",
                     "\u2019", "\u2013", "\u2014", "\u03a9mega", "\u65e5\u672c", "na\u00efve", "caf\u00e9", "\U0001f600",
                     "\u00a0", "\t", "\u00c0\u00c9", "\u041f\u0440\u0438\u0432\u0435\u0442", "|||", "a.", "I.", "A.",
                     "DOTMULTI", "Aa", "BB", "cats", "running", "mice", "men"]


def vidstg_sentences() -> list[str]:
    annotations = json.loads((DATA / "datasets" / "vidstg" / "val_annotations.json").read_text())
    return [c["description"] for video in annotations for c in video["captions"] + video["questions"]]


def golden_pairs() -> list[tuple[str, str]]:
    """Every (ground-truth caption, predicted caption) pair of a video in the golden cases."""
    pairs = []
    for case in sorted((DATA / "golden").iterdir()):
        gt = json.loads((case / "gt.json").read_text())
        pred = json.loads((case / "pred.json").read_text())
        pred = pred if isinstance(pred, list) else pred.get("annotations", [])
        video_of = {im["id"]: im["video_id"] for im in gt["images"]}
        truth: dict[int, set[str]] = {}
        for ann in gt["annotations"]:
            if ann.get("caption"):
                truth.setdefault(video_of[ann["image_id"]], set()).add(ann["caption"])
        for record in pred:
            video = record.get("video_id", video_of.get(record.get("image_id")))
            for caption in sorted(truth.get(video, ())):
                if isinstance(record.get("caption"), str):
                    pairs.append((caption, record["caption"]))
    return list(dict.fromkeys(pairs))


def adversarial_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Mutated real captions: punctuation runs, numbers, hyphens, apostrophes, repeated
    words, case changes, unicode, very long captions, plus empty and odd strings."""
    rng = random.Random(seed)
    lines = vidstg_sentences()

    def mutate(text: str) -> str:
        words = text.split(" ")
        for _ in range(rng.randint(0, 4)):
            op = rng.random()
            if op < 0.3:
                words.insert(rng.randint(0, len(words)), rng.choice(ADVERSARIAL_WORDS))
            elif op < 0.45 and words:
                i = rng.randrange(len(words))
                words.insert(i, words[i])
            elif op < 0.6 and words:
                i = rng.randrange(len(words))
                words[i] = words[i].upper() if rng.random() < 0.5 else words[i].capitalize()
            elif op < 0.7 and words:
                del words[rng.randrange(len(words))]
            elif op < 0.8:
                words += rng.choice(lines).split(" ")
            else:
                words = [w + rng.choice(ADVERSARIAL_WORDS) for w in words[:1]] + words[1:]
        return rng.choice([" ", "  "]).join(words)

    pairs = []
    for _ in range(n):
        a = rng.choice(lines)
        pairs.append((mutate(a), mutate(rng.choice([a, rng.choice(lines)]))))
    pairs += [("", ""), ("a", ""), ("", "a"), ("A man", "a MAN"), ("the the the the", "the"),
              (" ".join(lines[:40]), " ".join(lines[1:41])), ("a ||| b", "a b"), ("a |||", "a"), ("|||", "x"),
              ("Aa", "BB"), ("cat", "cats"), ("cat dog", "cats dog"), ("...", "..."), ("\u00a0", " ")]
    return pairs


def parity_pairs(n_random: int, n_adversarial: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    lines = vidstg_sentences()
    pairs = [(rng.choice(lines), rng.choice(lines)) for _ in range(n_random)]
    pairs += [(lines[i], lines[i + 1]) for i in range(0, min(n_random, len(lines) - 1))]
    pairs += golden_pairs() + adversarial_pairs(n_adversarial, seed + 1)
    return list(dict.fromkeys(pairs))


def assert_same_scores(pairs: list[tuple[str, str]]) -> None:
    refs, cands = [r for r, _ in pairs], [c for _, c in pairs]
    ours = PythonMeteor().score(refs, cands)
    with MeteorScorer() as jar:
        theirs = jar.score(refs, cands)
    bad = np.flatnonzero(~(np.abs(ours - theirs) <= 1e-9))
    shown = "\n".join(f"  ref={pairs[i][0]!r} cand={pairs[i][1]!r}: python {ours[i]!r}, jar {theirs[i]!r}"
                      for i in bad[:20])
    assert not len(bad), f"{len(bad)} of {len(pairs)} pairs differ from the jar:\n{shown}"


# --- parity with the jar ---------------------------------------------------------------------

@pytest.mark.java
@needs_java
@pytest.mark.skipif(shutil.which("javac") is None, reason="the normaliser oracle runs from source (needs a JDK)")
def test_normaliser_matches_the_jar_token_for_token():
    lines = vidstg_sentences() + [w for pair in adversarial_pairs(300, 7) for w in pair]
    lines = [line for line in lines if "\n" not in line and "\r" not in line]
    result = subprocess.run(["java", "-cp", str(default_meteor_jar()), str(ORACLE)],
                            input=("\n".join(lines) + "\n").encode(), capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    theirs = result.stdout.decode().split("\n")
    bad = [(line, tokens(line), out) for line, out in zip(lines, theirs)
           if tokens(line) != [w for w in out.replace("\t", " ").split(" ") if w]]
    assert len(theirs) >= len(lines) and not bad, bad[:10]


@pytest.mark.java
@needs_java
def test_scores_equal_the_jar_on_real_golden_and_adversarial_pairs():
    pairs = parity_pairs(1500, 1500)
    assert len(pairs) > 4000
    assert_same_scores(pairs)


@pytest.mark.slow
@pytest.mark.java
@needs_java
def test_scores_equal_the_jar_on_twenty_thousand_pairs():
    pairs = parity_pairs(8000, 6000, seed=3)
    assert len(pairs) >= 20_000
    assert_same_scores(pairs)


# --- the parts by hand ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["normalize", "resources", "score", "align", "paraphrase", "__init__"])
def test_docstring_examples(name):
    import doctest
    import importlib

    module = importlib.import_module("benchmark.captions.meteor15" + ("" if name == "__init__" else f".{name}"))
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def _stats(**values) -> Stats:
    zero = (0.0, 0.0, 0.0, 0.0)
    base = dict(test_length=0.0, ref_length=0.0, test_function=0.0, ref_function=0.0, test_content=zero,
                ref_content=zero, test_function_matched=zero, ref_function_matched=zero, chunks=0.0,
                test_word_matches=0.0, ref_word_matches=0.0)
    return Stats(**{**base, **values})


def test_score_formula_by_hand():
    # Empty sides and no matches: Java's 0/0 is NaN, which scores 0.
    assert segment_score(_stats()) == 0.0
    assert segment_score(_stats(test_length=2.0, ref_length=2.0)) == 0.0
    # Identical 3-word sentences, one chunk: no fragmentation penalty.
    full = _stats(test_length=3.0, ref_length=3.0, test_function=1.0, ref_function=1.0,
                  test_content=(2.0, 0, 0, 0), ref_content=(2.0, 0, 0, 0), test_function_matched=(1.0, 0, 0, 0),
                  ref_function_matched=(1.0, 0, 0, 0), chunks=1.0, test_word_matches=3.0, ref_word_matches=3.0)
    assert segment_score(full) == 1.0
    # One stem match of two content words each side, out of order (2 chunks).
    stats = _stats(test_length=2.0, ref_length=2.0, test_content=(1.0, 1.0, 0, 0), ref_content=(1.0, 1.0, 0, 0),
                   chunks=2.0, test_word_matches=2.0, ref_word_matches=2.0)
    p = r = (1.0 * 0.75 + 0.6 * 0.75) / 1.5
    f_mean = 1 / (0.15 / p + 0.85 / r)
    assert segment_score(stats) == pytest.approx(f_mean * (1 - 0.6 * (2 / 2) ** 0.2), abs=1e-15)


def test_java_hashes_and_the_synonym_fallback():
    assert java_hash("") == 0 and java_hash("a") == 97 and java_hash("Aa") == java_hash("BB")
    assert java_hash("polygenelubricants") == -2147483648  # wraps like a Java int
    synonyms = Synonyms(SynsetIndex.build("cat\n1 2\ndog\n3\nmouse\n4\n"), {"mice": ["mouse"]})
    assert synonyms.of("cats") == {1, 2}          # "s" -> "" finds "cat"
    assert synonyms.of("mice") == {4}            # the exceptions file's base
    assert synonyms.of("glass") == frozenset()   # "ss" words are never stripped
    assert synonyms.morph("ox") == "ox"           # two letters or fewer: as is


def test_paraphrase_table_cache_round_trip_and_order(tmp_path):
    lines = ["0.5", "a big", "a large", "0.1", "big", "huge", "0.2", "huge", "big", "0.3", "large dog", "hound"]
    table = ParaphraseTable.build_from_lines(lines)
    table.save(tmp_path)
    loaded = ParaphraseTable.load(tmp_path)
    test, ref = ["a", "huge", "hound"], ["a", "big", "large", "dog"]
    found = paraphrase_matches(loaded, test, ref)
    assert found == paraphrase_matches(table, test, ref)
    # Pass 1 (reference phrases): "big" -> "huge"; "large dog" -> "hound". Pass 2 (candidate
    # phrases): "huge" -> "big" again, listed under reference position 1.
    assert found == [Match(1, 1, 1, 1, 3), Match(2, 2, 2, 1, 3), Match(1, 1, 1, 1, 3)]
    with pytest.raises(ValueError, match="ends inside a record"):
        ParaphraseTable.build_from_lines(["0.5", "a"])


def test_chunks_and_a_reordered_alignment():
    matches = [Match(0, 1, 1, 1, 0), Match(1, 1, 0, 1, 0)]  # crossed: two chunks
    assert count_chunks(matches, 2) == 2
    assert count_chunks([Match(0, 2, 0, 2, 3)], 3) == 1
    alignment = align(["b", "a"], ["a", "b"])
    assert sorted((m.start, m.match_start) for m in alignment.matches) == [(0, 1), (1, 0)]
    assert alignment.chunks == 2


def test_a_large_batch_is_split_over_forked_workers_with_the_same_scores(monkeypatch):
    import benchmark.captions.meteor15 as meteor15

    pairs = parity_pairs(150, 150, seed=5)
    refs, cands = [r for r, _ in pairs], [c for _, c in pairs]
    serial = PythonMeteor(num_workers=1)
    expected = serial.score(refs, cands)
    assert serial._words  # prepared here
    monkeypatch.setattr(meteor15, "_PARALLEL_MIN_PAIRS", 8)
    parallel = PythonMeteor(num_workers=2)
    assert parallel.score(refs, cands).tolist() == expected.tolist()
    assert not parallel._words  # every caption was prepared in the children
    assert parallel.score(refs[:3], cands[:3]).tolist() == expected[:3].tolist()  # small: here
    assert len(parallel._words) > 0
