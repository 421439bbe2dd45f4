"""CIDEr-D against pycocoevalcap's Cider (the independent reference) and hand-computed cases."""

from __future__ import annotations

import math
import random
import threading

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider

from benchmark.captions import CiderD, cider_d


def reference_scores(pairs, counts, n=4, sigma=6.0):
    """pycocoevalcap on the batch with each pair repeated counts[i] times; per distinct pair."""
    gts, res, owner = {}, {}, []
    for i, ((ref, cand), m) in enumerate(zip(pairs, counts)):
        for _ in range(m):
            gts[len(owner)] = [ref]
            res[len(owner)] = [cand]
            owner.append(i)
    _, per_item = Cider(n=n, sigma=sigma).compute_score(gts, res)
    per_item = np.asarray(per_item)
    # Every copy of a pair gets the same score; check it and keep one.
    out = np.empty(len(pairs))
    for i in range(len(pairs)):
        copies = per_item[[k for k, o in enumerate(owner) if o == i]]
        assert np.all(copies == copies[0])
        out[i] = copies[0]
    return out


def random_batch(rng: random.Random):
    vocab = [f"w{i}" for i in range(rng.randint(1, 8))] + ["a", "A", "man", "man.", ","]
    captions = [" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 15))) for _ in range(rng.randint(1, 6))]
    pairs = [(rng.choice(captions), rng.choice(captions)) for _ in range(rng.randint(1, 8))]
    pairs = list(dict.fromkeys(pairs))
    counts = [rng.randint(1, 4) for _ in pairs]
    return pairs, counts


def test_matches_pycocoevalcap_on_random_batches():
    rng = random.Random(1234)
    scorer = CiderD()  # one scorer for all batches: its n-gram cache must not leak between calls
    compared, nonzero = 0, 0
    for _ in range(300):
        pairs, counts = random_batch(rng)
        refs, cands = [p[0] for p in pairs], [p[1] for p in pairs]
        ours = scorer(refs, cands, counts)
        if not any(r.split() for r in refs):
            # pycocoevalcap crashes (max() of an empty df); we give 0.
            assert np.all(ours == 0)
            continue
        np.testing.assert_allclose(ours, reference_scores(pairs, counts), rtol=0, atol=1e-9)
        compared += 1
        nonzero += int(np.any(ours > 0))
    assert compared > 250 and nonzero > 150  # the comparison exercised real scores


@pytest.mark.parametrize("sigma", [0.5, 1.0, 20.0])
def test_matches_pycocoevalcap_other_sigma(sigma):
    # Only sigma: pycocoevalcap always extracts 1..4-grams, so its Cider crashes for n < 4.
    rng = random.Random(int(sigma * 10))
    for _ in range(30):
        pairs, counts = random_batch(rng)
        if not any(p[0].split() for p in pairs):
            continue
        ours = cider_d([p[0] for p in pairs], [p[1] for p in pairs], counts, sigma=sigma)
        np.testing.assert_allclose(ours, reference_scores(pairs, counts, sigma=sigma), rtol=0, atol=1e-9)


def test_hand_computed_repeated_pair():
    # N = 3. "a" is in every reference (df 3) so weighs 0; the other n-grams of "a man runs"
    # have df 2 and equal weights, so its self-similarity is 1 for orders 1..3 and 0 for 4:
    # 10 * 3/4.
    scores = cider_d(["a man runs", "a dog sits"], ["a man runs", "a cat"], [2, 1])
    assert scores.tolist() == pytest.approx([7.5, 0.0], abs=1e-12)


def test_hand_computed_clipping_and_penalty():
    # N = 2, all weights tf * log 2. Unigrams: clip gives 2w^2 / (sqrt(8) w * sqrt(2) w) = 1/2;
    # bigrams: "x y" clipped w^2 / (sqrt(5) w * w); trigrams absent in the reference.
    # Length penalty on the bigram counts 3 vs 1: exp(-4 / 72).
    scores = cider_d(["x y", "z"], ["x y x y", "z"])
    expected = 10 * (0.5 + 1 / math.sqrt(5)) / 4 * math.exp(-4 / 72)
    assert scores.tolist() == pytest.approx([expected, 2.5], abs=1e-12)


def test_case_and_punctuation_matter():
    same = cider_d(["a man", "b"], ["a man", "b"])[0]
    other = cider_d(["a man", "b"], ["A man.", "b"])[0]
    assert same == pytest.approx(10 * (2 / 4), abs=1e-12)  # unigrams and the bigram match
    assert other == 0.0


@pytest.mark.parametrize(
    ("refs", "cands", "counts"),
    [
        (["a man runs"], ["a man runs"], None),  # N = 1: log(N) = 0
        (["a man runs"], ["a man runs"], [1]),
        (["a dog", "a dog"], ["a dog", "a cat"], [3, 2]),  # all references identical: df = N
        (["", "a dog"], ["a dog", ""], None),  # empty captions score 0
        (["", ""], ["x", ""], None),  # no reference n-gram at all
    ],
)
def test_degenerate_batches_score_zero(refs, cands, counts):
    assert cider_d(refs, cands, counts).tolist() == [0.0] * len(refs)


def test_empty_input_and_bad_counts():
    assert cider_d([], []).shape == (0,)
    with pytest.raises(ValueError, match="counts must have shape"):
        cider_d(["a"], ["a"], [1, 2])
    with pytest.raises(ValueError, match="integers >= 1"):
        cider_d(["a", "b"], ["a", "b"], [0, 2])
    with pytest.raises(ValueError, match="candidates"):
        cider_d(["a", "b"], ["a"])


def test_threads_share_one_scorer():
    rng = random.Random(7)
    batches = [random_batch(rng) for _ in range(40)]
    batches = [b for b in batches if any(p[0].split() for p in b[0])]
    expected = [reference_scores(*b) for b in batches]
    scorer = CiderD()  # fresh cache: the threads race to intern the same n-grams
    results: dict[int, np.ndarray] = {}

    def work(i):
        pairs, counts = batches[i]
        results[i] = scorer([p[0] for p in pairs], [p[1] for p in pairs], counts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, exp in enumerate(expected):
        np.testing.assert_allclose(results[i], exp, rtol=0, atol=1e-9)


def test_repeated_batches_are_remembered_and_safe_to_modify():
    scorer = CiderD()
    refs, cands = ["a man runs", "a dog sits", "a man"], ["a man runs", "a cat", "man runs"]
    first = scorer(refs, cands, [2, 1, 1])
    first[:] = -1.0  # the caller's array is theirs: the remembered one must not change
    np.testing.assert_allclose(scorer(refs, cands, [2, 1, 1]), reference_scores(list(zip(refs, cands)), [2, 1, 1]), atol=1e-9)
    # Same pairs, other multiplicities: another batch, other document frequencies.
    other = scorer(refs, cands, [1, 2, 1])
    np.testing.assert_allclose(other, reference_scores(list(zip(refs, cands)), [1, 2, 1]), atol=1e-9)
    assert not np.allclose(other, scorer(refs, cands, [2, 1, 1]))


def test_several_references_per_item_match_pycocoevalcap():
    """Items with 1-3 references (shared words within an item count once in df), repeated
    with multiplicities, in a batch that mixes single strings and reference lists."""
    rng = random.Random(7)
    scorer = CiderD()
    for _ in range(30):
        vocab = [f"w{i}" for i in range(rng.randint(2, 8))] + ["a", "man", "dog"]
        sentence = lambda: " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 10)))  # noqa: E731
        refs = [[sentence() for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(1, 6))]
        cands = [rng.choice(r) if rng.random() < 0.3 else sentence() for r in refs]
        counts = [rng.randint(1, 3) for _ in refs]
        gts, res = {}, {}
        for r, c, m in zip(refs, cands, counts):
            for _ in range(m):
                gts[len(gts)], res[len(res)] = list(r), [c]
        _, per_item = Cider().compute_score(gts, res)
        expected = np.repeat(np.arange(len(refs)), counts)
        mixed = [r[0] if len(r) == 1 else r for r in refs]
        ours = scorer(mixed, cands, counts)
        np.testing.assert_allclose(ours[expected], per_item, rtol=1e-12, atol=1e-12)
        # One-reference lists take the general path and give the single-reference numbers.
        singles = [r[0] for r in refs]
        np.testing.assert_allclose(scorer([[x] for x in singles], cands, counts),
                                   scorer(singles, cands, counts), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="at least one reference"):
        cider_d([["a"], []], ["a", "b"])
