"""METEOR 1.5's aligner for English, as the jar runs it: candidate matches of four modules
(exact, stem, synonym, paraphrase), then a beam search over the reference positions.

What the jar does, reproduced here on purpose:

* Words are compared by Java ``String.hashCode`` (exact, and the "different words" test of
  stem and synonym), so two words with the same 32-bit hash match exactly.
* Every module adds its candidates independently: a pair of words can be an exact, a stem
  and a synonym candidate at once. Two identical sentences use the exact module only.
* The search scores partial alignments with weights 1 / 0.5 / 0.5 / 0.5 (exact / others),
  truncated to integers after each match: a one-word stem or synonym match adds 0.
* Partial alignments are ranked by more weighted matches, then fewer chunks, then smaller
  distance, with a stable sort and a beam of 40. The distance of a new match is added to
  the partial alignment it extends, not to the new one (a bug of the jar).

Example:
    >>> alignment = align(["the", "cats", "sat"], ["the", "cat", "sat"])  # no synonyms, no paraphrases
    >>> [(m.start, m.match_start, m.module) for m in alignment.matches], alignment.chunks
    ([(0, 0, 0), (1, 1, 1), (2, 2, 0)], 1)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmark.captions.meteor15.paraphrase import Match, ParaphraseTable, Sentence, paraphrase_matches
from benchmark.captions.meteor15.resources import SynsetIndex, inflection_bases, synsets

EXACT, STEM, SYNONYM, PARAPHRASE = range(4)
# Weights of the search (MeteorScorer sets them; the score uses its own).
SEARCH_WEIGHTS = (1.0, 0.5, 0.5, 0.5)
BEAM = 40
# SynonymDictionary's morphological fallback: (suffix, replacement), first hit wins.
_SUFFIXES = (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
             ("men", "man"), ("ies", "y"), ("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"),
             ("ed", ""), ("ing", "e"), ("ing", ""), ("er", ""), ("est", ""), ("er", "e"), ("est", "e"))


def _utf16(text: str) -> str:
    """The string as UTF-16 code units, one character each (Java's view of it)."""
    data = text.encode("utf-16-le", "surrogatepass")
    return "".join(chr(int.from_bytes(data[i:i + 2], "little")) for i in range(0, len(data), 2))


@functools.lru_cache(maxsize=1 << 17)
def java_hash(text: str) -> int:
    """Java's ``String.hashCode``: 31-polynomial of the UTF-16 code units, as an int32.

    Example:
        >>> java_hash("Aa") == java_hash("BB"), java_hash("cat")
        (True, 98262)
    """
    h = 0
    for unit in (_utf16(text) if any(ord(c) > 0xFFFF for c in text) else text):
        h = (31 * h + ord(unit)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


@functools.cache
def _stemmer():
    # The English module only: the package's own entry point imports every language.
    from snowballstemmer.english_stemmer import EnglishStemmer

    return EnglishStemmer()


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """Snowball English as the jar's ``englishStemmer`` (pinned snowballstemmer 2.2.0), over
    UTF-16 code units as Java sees a word."""
    if any(ord(c) > 0xFFFF for c in word):
        units = _stemmer().stemWord(_utf16(word))
        return b"".join(ord(u).to_bytes(2, "little") for u in units).decode("utf-16-le", "surrogatepass")
    return _stemmer().stemWord(word)


class Synonyms:
    """WordNet synsets (``synonym/english.synsets``) and the inflection exceptions
    (``synonym/english.exceptions``) of the jar, with its lookup: a word's synsets plus
    those of its base form (an exception's bases, else the first suffix rule whose result
    has synsets)."""

    def __init__(self, synsets: Mapping[str, frozenset[int]] | SynsetIndex, bases: Mapping[str, list[str]]) -> None:
        self.synsets = synsets
        self.bases = bases

    @classmethod
    def english(cls) -> Synonyms:
        """The jar's English data (the synsets through their memory-mapped index)."""
        return cls(synsets(), inflection_bases())

    def morph(self, word: str) -> str:
        if word.endswith("ss") or len(_utf16(word)) <= 2:
            return word
        for suffix, replacement in _SUFFIXES:
            if word.endswith(suffix):
                candidate = word[: len(word) - len(suffix)] + replacement
                if candidate in self.synsets:
                    return candidate
        return ""

    @functools.lru_cache(maxsize=1 << 16)  # noqa: B019 (one dictionary per process)
    def of(self, word: str) -> frozenset[int]:
        """The synsets a word can match through."""
        own = self.synsets.get(word, frozenset())
        if word in self.bases:
            stemmed = frozenset().union(*(self.synsets.get(b, frozenset()) for b in self.bases[word]))
        else:
            stemmed = self.synsets.get(self.morph(word), frozenset())
        return own | stemmed


@dataclass
class Alignment:
    """The chosen links (in reference order), the chunk count, and per module the matched
    content / function words of each side."""

    matches: list[Match]
    chunks: int


class Words:
    """A token list with what matching reads of it, computed once however many pairs it is
    in: Java hashes of the words and of their stems, synsets, the paraphrase view."""

    __slots__ = ("tokens", "hashes", "stems", "synsets", "paraphrase")

    def __init__(self, tokens: Sequence[str], *, synonyms: Synonyms, paraphrases: ParaphraseTable | None) -> None:
        self.tokens = list(tokens)
        self.hashes = [java_hash(w) for w in self.tokens]
        self.stems = [java_hash(stem(w)) for w in self.tokens]
        self.synsets = [synonyms.of(w) for w in self.tokens]
        self.paraphrase = None if paraphrases is None else Sentence(paraphrases, self.tokens)


def candidates(test: Words, ref: Words, *, paraphrases: ParaphraseTable | None) -> list[list[Match]]:
    """Candidate matches per reference position, in the order the jar adds them."""
    per_ref: list[list[Match]] = [[] for _ in ref.tokens]
    test_hash, ref_hash = test.hashes, ref.hashes
    # For each reference word, the candidate words with its hash / stem, in ascending order:
    # the jar's double loop (reference outer, candidate inner) without the pairs that fail.
    same_hash: dict[int, list[int]] = {}
    same_stem: dict[int, list[int]] = {}
    for i in range(len(test_hash)):
        same_hash.setdefault(test_hash[i], []).append(i)
        same_stem.setdefault(test.stems[i], []).append(i)
    for j, h in enumerate(ref_hash):
        per_ref[j].extend(Match(j, 1, i, 1, EXACT) for i in same_hash.get(h, ()))
    if test_hash == ref_hash:
        return per_ref
    for j, h in enumerate(ref_hash):
        per_ref[j].extend(Match(j, 1, i, 1, STEM) for i in same_stem.get(ref.stems[j], ()) if test_hash[i] != h)
    with_synsets = [i for i in range(len(test_hash)) if test.synsets[i]]
    for j, h in enumerate(ref_hash):
        if ref.synsets[j]:
            per_ref[j].extend(Match(j, 1, i, 1, SYNONYM) for i in with_synsets
                              if test_hash[i] != h and not test.synsets[i].isdisjoint(ref.synsets[j]))
    if paraphrases is not None:
        for m in paraphrase_matches(paraphrases, test.paraphrase, ref.paraphrase):
            per_ref[m.start].append(m)
    return per_ref


class _Path:
    """A partial alignment (PartialAlignment): integer counters, as in the jar; the words
    used on each side are bit masks (bit k = word k), so that a copy costs nothing."""

    __slots__ = ("matches", "matches1", "matches2", "chunks", "idx", "last_end", "distance", "used1", "used2")

    def __init__(self, n_ref: int) -> None:
        self.matches: list[Match | None] = [None] * n_ref
        self.matches1 = self.matches2 = self.chunks = self.idx = self.distance = 0
        self.last_end = -1
        self.used1 = self.used2 = 0

    def copy(self) -> _Path:
        new = _Path.__new__(_Path)
        new.matches, new.used1, new.used2 = list(self.matches), self.used1, self.used2
        new.matches1, new.matches2, new.chunks = self.matches1, self.matches2, self.chunks
        new.idx, new.last_end, new.distance = self.idx, self.last_end, self.distance
        return new

    def take(self, m: Match) -> None:
        """The jar's statistics update for a match (the distance is not added here)."""
        w = SEARCH_WEIGHTS[m.module]
        self.matches1 = int(self.matches1 + m.match_length * w)
        self.matches2 = int(self.matches2 + m.length * w)
        if self.last_end != -1 and m.match_start != self.last_end:
            self.chunks += 1
        self.idx = m.start + m.length
        self.last_end = m.match_start + m.match_length


def _rank(path: _Path) -> tuple[int, int, int]:
    return -(path.matches1 + path.matches2), path.chunks, path.distance


def align(test: Sequence[str] | Words, ref: Sequence[str] | Words, *, synonyms: Synonyms | None = None,
          paraphrases: ParaphraseTable | None = None) -> Alignment:
    """The jar's alignment of candidate tokens ``test`` with reference tokens ``ref`` (or
    their :class:`Words`, built with the same ``paraphrases``)."""
    if synonyms is None:
        synonyms = Synonyms({}, {})
    test = test if isinstance(test, Words) else Words(test, synonyms=synonyms, paraphrases=paraphrases)
    ref = ref if isinstance(ref, Words) else Words(ref, synonyms=synonyms, paraphrases=paraphrases)
    per_ref = candidates(test, ref, paraphrases=paraphrases)
    n1, n2 = len(test.tokens), len(ref.tokens)
    cover1, cover2 = [0] * n1, [0] * n2
    for ms in per_ref:
        for m in ms:
            for k in range(m.match_start, m.match_start + m.match_length):
                cover1[k] += 1
            for k in range(m.start, m.start + m.length):
                cover2[k] += 1
    # Each candidate with the bit masks of its words: (match, candidate side, reference side).
    masked = [[(m, ((1 << m.match_length) - 1) << m.match_start, ((1 << m.length) - 1) << m.start) for m in ms]
              for ms in per_ref]
    initial = _Path(n2)
    # Matches without competition are fixed before the search (their statistics are added
    # when the search reaches them).
    for j, ms in enumerate(masked):
        if len(ms) != 1:
            continue
        m, mask1, mask2 = ms[0]
        if all(cover2[k] == 1 for k in range(m.start, m.start + m.length)) and \
                all(cover1[k] == 1 for k in range(m.match_start, m.match_start + m.match_length)):
            initial.matches[j] = m
            initial.used1 |= mask1
            initial.used2 |= mask2
    paths = [initial]
    for current in range(n2 + 1):
        ranked = sorted(paths, key=_rank)[:BEAM]
        paths = []
        for path in ranked:
            if current == n2:
                if path.last_end != -1:
                    path.chunks += 1
                paths.append(path)
                continue
            if path.used2 >> current & 1:
                if current < path.idx:
                    paths.append(path)
                elif path.matches[path.idx] is not None:
                    m = path.matches[path.idx]
                    path.take(m)
                    path.distance += abs(m.start - m.match_start)
                    paths.append(path)
                continue
            for m, mask1, mask2 in masked[current]:
                if path.used2 & mask2 or path.used1 & mask1:
                    continue
                new = path.copy()
                new.used1 |= mask1
                new.used2 |= mask2
                new.matches[current] = m
                new.take(m)
                path.distance += abs(m.start - m.match_start)  # the jar's bug: the parent's
                paths.append(new)
            if path.last_end != -1:
                path.chunks += 1
                path.last_end = -1
            path.idx += 1
            paths.append(path)
        if not paths:
            paths = [ranked[0]]
    best = sorted(paths, key=_rank)[0]
    chosen = [m for m in best.matches if m is not None]
    return Alignment(matches=chosen, chunks=count_chunks(chosen, n2))


def count_chunks(matches: Sequence[Match], n_ref: int) -> int:
    """Runs of matches contiguous in the reference and continuing in the candidate."""
    chunks, last_end, idx = 0, -1, 0
    by_start = {m.start: m for m in matches}
    while idx < n_ref:
        m = by_start.get(idx)
        if m is None:
            if last_end != -1:
                chunks += 1
                last_end = -1
            idx += 1
            continue
        if last_end != -1 and m.match_start != last_end:
            chunks += 1
        idx = m.start + m.length
        last_end = m.match_start + m.match_length
    return chunks + (last_end != -1)
