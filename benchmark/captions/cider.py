"""CIDEr-D exactly as pycocoevalcap 1.2's ``Cider`` computes it, for batches given as
distinct (reference, candidate) pairs with multiplicities, or as items with several references.

The reference scorer calls ``Cider().compute_score(gts, res)`` once per video (and alpha), one
item per matched frame, one reference per item. The document frequencies and ``log(N)`` come
from that whole batch, so the score of a pair depends on the other pairs of its call. Passing
each distinct pair once with its multiplicity gives the same numbers, at a cost that depends on
the number of distinct captions only.

Faithfully reproduced details of pycocoevalcap's ``CiderScorer`` (including its quirks):

- captions are split on whitespace, nothing else (case and punctuation matter);
- a document is one item: the n-grams (n = 1..4) of its reference set each count once in
  ``df`` (an n-gram in two references of the same item counts once);
- the tf-idf weight is ``tf * (log(N) - log(max(1, df)))``, N = number of items;
- the "length" used by the gaussian penalty is the number of *bigrams* (its ``n == 1`` test
  looks at the 0-based n-gram order), i.e. ``max(0, words - 1)``; with n = 4 this equals a
  word-count difference whenever the score is not 0 anyway;
- similarity per order is ``sum(min(w_hyp, w_ref) * w_ref) / (|hyp| * |ref|)`` (the division is
  skipped when a norm is 0), times ``exp(-delta**2 / (2 * sigma**2))``;
- the score is the mean over the n orders, times 10; with several references, the mean of
  that over the references.

Example:
    >>> scores = cider_d(["a man runs", "a dog sits"], ["a man runs", "a cat"], [2, 1])
    >>> [round(float(s), 4) for s in scores]
    [7.5, 0.0]
    >>> scores = cider_d([["a red car drives", "a car drives away"], ["a dog sleeps"]],
    ...                  ["a red car drives", "a cat"])
    >>> round(float(scores[0]), 4)
    6.25
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CiderD", "cider_d"]

_MAX_BATCHES = 4096  # remembered batches per scorer (a few MB at most)


@dataclass(frozen=True)
class _CookedCaption:
    """The n-grams of one caption: interned ids, term frequencies and 0-based orders."""

    ngram_ids: np.ndarray  # int64, distinct within the caption
    term_freqs: np.ndarray  # float64
    orders: np.ndarray  # int64, len(ngram) - 1
    length: int  # number of bigrams: the reference's "length" for the gaussian penalty


class CiderD:
    """CIDEr-D scorer that keeps the n-grams of every caption it has seen.

    The n-gram cache makes repeated calls (one per video and alpha) cheap: a caption is split
    once for the whole run. Instances are thread-safe.

    Example:
        >>> scorer = CiderD()
        >>> float(scorer(["a b c", "x y"], ["a b c", "x y"])[0]) > 0
        True
    """

    def __init__(self, *, n: int = 4, sigma: float = 6.0) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = n
        self.sigma = sigma
        self._ngram_ids: dict[tuple[str, ...], int] = {}
        self._cooked: dict[str, _CookedCaption] = {}
        # Whole batches seen recently: a video's matched pairs are often the same at
        # several alphas, and a repeat then costs one dict lookup.
        self._batches: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _cook(self, caption: str) -> _CookedCaption:
        cooked = self._cooked.get(caption)
        if cooked is not None:
            return cooked
        words = caption.split()
        counts: Counter[tuple[str, ...]] = Counter()
        for k in range(1, self.n + 1):
            counts.update(tuple(words[i : i + k]) for i in range(len(words) - k + 1))
        # Interning mutates shared state: two threads must not hand out the same id twice.
        with self._lock:
            ids = np.fromiter(
                (self._ngram_ids.setdefault(g, len(self._ngram_ids)) for g in counts),
                dtype=np.int64,
                count=len(counts),
            )
        orders = np.fromiter((len(g) - 1 for g in counts), dtype=np.int64, count=len(counts))
        term_freqs = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        length = int(term_freqs[orders == 1].sum())
        cooked = _CookedCaption(ids, term_freqs, orders, length)
        self._cooked[caption] = cooked
        return cooked

    def __call__(
        self,
        refs: Sequence[str] | Sequence[Sequence[str]],
        cands: Sequence[str],
        counts: Sequence[int] | np.ndarray | None = None,
    ) -> np.ndarray:
        """Score each item (refs[i], cands[i]) within the batch where it appears counts[i] times.

        ``refs[i]`` is one reference string or a non-empty sequence of references (then the
        item's score is the mean over them, as pycocoevalcap does). Returns a float64 array of
        len(refs): the per-item score pycocoevalcap gives each copy of the item.
        """
        n_items = len(refs)
        if len(cands) != n_items:
            raise ValueError(f"{n_items} references but {len(cands)} candidates")
        mult = np.ones(n_items) if counts is None else np.asarray(counts, dtype=np.float64)
        if mult.shape != (n_items,):
            raise ValueError(f"counts must have shape ({n_items},), got {mult.shape}")
        if n_items == 0:
            return np.zeros(0)
        if not np.all(mult >= 1) or not np.all(mult == np.floor(mult)):
            raise ValueError("counts must be integers >= 1")
        if not all(isinstance(r, str) for r in refs):
            refs = tuple((r,) if isinstance(r, str) else tuple(r) for r in refs)
            if not all(refs):
                raise ValueError("every item needs at least one reference")
        key = (tuple(refs), tuple(cands), mult.tobytes())
        with self._lock:
            scores = self._batches.get(key)
            if scores is not None:
                self._batches.move_to_end(key)
                return scores.copy()
        scores = self._compute(refs, cands, mult)
        with self._lock:
            self._batches[key] = scores.copy()
            if len(self._batches) > _MAX_BATCHES:
                self._batches.popitem(last=False)
        return scores

    def _compute(self, refs: Sequence[str] | Sequence[tuple[str, ...]], cands: Sequence[str],
                 mult: np.ndarray) -> np.ndarray:
        n_items = len(refs)
        single = isinstance(refs[0], str)  # __call__ made them all strings or all tuples
        # Every distinct caption of the batch, references and candidates alike, once. A
        # "pair" is one (item, reference): the item itself when it has a single reference.
        index: dict[str, int] = {}
        if single:
            pair_item = np.arange(n_items)
            ref_idx = np.fromiter((index.setdefault(r, len(index)) for r in refs), np.int64, n_items)
        else:
            pair_item = np.repeat(np.arange(n_items), [len(r) for r in refs])
            ref_idx = np.fromiter((index.setdefault(r, len(index)) for rs in refs for r in rs),
                                  np.int64, len(pair_item))
        cand_of_item = np.fromiter((index.setdefault(c, len(index)) for c in cands), np.int64, n_items)
        cand_idx = cand_of_item[pair_item]
        n_pairs = len(pair_item)
        cooked = [self._cook(c) for c in index]
        n_caps, n = len(cooked), self.n
        sizes = np.fromiter((len(c.ngram_ids) for c in cooked), np.int64, n_caps)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        owner = np.repeat(np.arange(n_caps), sizes)
        ids = np.concatenate([c.ngram_ids for c in cooked])
        tf = np.concatenate([c.term_freqs for c in cooked])
        order = np.concatenate([c.orders for c in cooked])
        lengths = np.fromiter((c.length for c in cooked), np.float64, n_caps)

        def entries(captions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # (position in ``captions``, index into the flat n-gram arrays) of every n-gram.
            counts = sizes[captions]
            at = np.repeat(np.arange(len(captions)), counts)
            first = np.repeat(starts[captions] - np.cumsum(counts) + counts, counts)
            return at, first + np.arange(len(at))

        # Document frequency: each item is one document, the n-grams of its reference set.
        uniq_ids, local = np.unique(ids, return_inverse=True)
        n_local = len(uniq_ids)
        if single:
            doc_weight = np.bincount(ref_idx, weights=mult, minlength=n_caps)
            df = np.bincount(local, weights=doc_weight[owner], minlength=n_local)
        else:
            at, entry = entries(ref_idx)
            docs = np.unique(pair_item[at] * n_local + local[entry])  # an n-gram once per item
            df = np.bincount(docs % n_local, weights=mult[docs // n_local], minlength=n_local)
        log_n = np.log(float(mult.sum()))
        weights = tf * (log_n - np.log(np.maximum(1.0, df[local])))
        norms = np.sqrt(
            np.bincount(owner * n + order, weights=weights**2, minlength=n_caps * n)
        ).reshape(n_caps, n)

        # For each candidate n-gram of each pair, the weight of that n-gram in the pair's
        # reference (0 when absent), found by binary search on (caption, n-gram) keys.
        pair_of, hyp_entry = entries(cand_idx)
        keys = owner * n_local + local
        key_order = np.argsort(keys, kind="stable")
        sorted_keys = keys[key_order]
        query = ref_idx[pair_of] * n_local + local[hyp_entry]
        # No candidate n-gram at all means no query, so the clipped index is never used empty.
        pos = np.minimum(np.searchsorted(sorted_keys, query), len(keys) - 1)
        w_ref = np.where(sorted_keys[pos] == query, weights[key_order[pos]], 0.0)
        w_hyp = weights[hyp_entry]
        val = np.bincount(
            pair_of * n + order[hyp_entry],
            weights=np.minimum(w_hyp, w_ref) * w_ref,
            minlength=n_pairs * n,
        ).astype(np.float64, copy=False)  # bincount of nothing is int64
        val = val.reshape(n_pairs, n)

        denom = norms[cand_idx] * norms[ref_idx]
        val = np.divide(val, denom, out=val, where=denom != 0)
        delta = lengths[cand_idx] - lengths[ref_idx]
        val *= np.exp(-(delta**2) / (2 * self.sigma**2))[:, None]
        pair_scores = val.mean(axis=1) * 10.0
        if single:
            return pair_scores
        return np.bincount(pair_item, weights=pair_scores, minlength=n_items) / np.bincount(
            pair_item, minlength=n_items)


def cider_d(
    refs: Sequence[str] | Sequence[Sequence[str]],
    cands: Sequence[str],
    counts: Sequence[int] | np.ndarray | None = None,
    *,
    n: int = 4,
    sigma: float = 6.0,
) -> np.ndarray:
    """CIDEr-D of each distinct (reference, candidate) pair, pycocoevalcap-exact.

    ``refs[i]`` is a reference string or a sequence of references (see :class:`CiderD`).
    ``counts[i]`` is how many items of the batch hold pair i (default 1 each); the batch
    size is ``sum(counts)``. Uses a shared :class:`CiderD` per (n, sigma) so that n-grams are
    computed once per caption for the whole process.

    Example:
        >>> cider_d(["a man"], ["a man"]).tolist()   # a single item: log(N) = 0
        [0.0]
    """
    key = (n, float(sigma))
    scorer = _SHARED.get(key)
    if scorer is None:
        scorer = _SHARED.setdefault(key, CiderD(n=n, sigma=sigma))
    return scorer(refs, cands, counts)


_SHARED: dict[tuple[int, float], CiderD] = {}
