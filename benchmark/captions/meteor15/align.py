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
    in: Java hashes of the words and of their stems, synsets, the paraphrase view, and the
    positions of each hash, stem and synset (ascending, the jar's inner-loop order)."""

    __slots__ = ("tokens", "hashes", "stems", "synsets", "paraphrase", "by_hash", "by_stem", "_by_synset")

    def __init__(self, tokens: Sequence[str], *, synonyms: Synonyms, paraphrases: ParaphraseTable | None) -> None:
        self.tokens = list(tokens)
        self.hashes = [java_hash(w) for w in self.tokens]
        self.stems = [java_hash(stem(w)) for w in self.tokens]
        self.synsets = [synonyms.of(w) for w in self.tokens]
        self.paraphrase = None if paraphrases is None else Sentence(paraphrases, self.tokens)
        self.by_hash: dict[int, list[int]] = {}
        self.by_stem: dict[int, list[int]] = {}
        for i, (h, s) in enumerate(zip(self.hashes, self.stems)):
            self.by_hash.setdefault(h, []).append(i)
            self.by_stem.setdefault(s, []).append(i)
        self._by_synset: dict[int, list[int]] | None = None

    @property
    def by_synset(self) -> dict[int, list[int]]:
        """Synset -> positions of the words in it; built the first time the words are a
        candidate (a reference only reads its own synsets)."""
        if self._by_synset is None:
            self._by_synset = {}
            for i, synsets in enumerate(self.synsets):
                for synset in synsets:
                    self._by_synset.setdefault(synset, []).append(i)
        return self._by_synset


def candidates(test: Words, ref: Words, *, paraphrases: ParaphraseTable | None) -> list[list[Match]]:
    """Candidate matches per reference position, in the order the jar adds them: its double
    loop (reference outer, candidate inner) without the pairs that fail."""
    per_ref: list[list[Match]] = [[] for _ in ref.tokens]
    test_hash, ref_hash = test.hashes, ref.hashes
    for j, h in enumerate(ref_hash):
        per_ref[j].extend(Match(j, 1, i, 1, EXACT) for i in test.by_hash.get(h, ()))
    if test_hash == ref_hash:
        return per_ref
    for j, h in enumerate(ref_hash):
        per_ref[j].extend(Match(j, 1, i, 1, STEM) for i in test.by_stem.get(ref.stems[j], ()) if test_hash[i] != h)
    by_synset = test.by_synset
    if by_synset:
        for j, h in enumerate(ref_hash):
            if ref.synsets[j]:
                shared = set()
                for synset in ref.synsets[j]:
                    shared.update(by_synset.get(synset, ()))
                per_ref[j].extend(Match(j, 1, i, 1, SYNONYM) for i in sorted(shared) if test_hash[i] != h)
    if paraphrases is not None:
        for m in paraphrase_matches(paraphrases, test.paraphrase, ref.paraphrase):
            per_ref[m.start].append(m)
    return per_ref


class _Path:
    """A partial alignment (PartialAlignment): integer counters, as in the jar; the words
    used on each side are bit masks (bit k = word k), so that a copy costs nothing."""

    __slots__ = ("matches", "matches12", "chunks", "idx", "last_end", "distance", "used1", "used2")

    def __init__(self, n_ref: int) -> None:
        self.matches: list[Match | None] = [None] * n_ref
        self.matches12 = self.chunks = self.idx = self.distance = 0  # matches12: both sides' matches
        self.last_end = -1
        self.used1 = self.used2 = 0

    def copy(self) -> _Path:
        new = _Path.__new__(_Path)
        new.matches, new.used1, new.used2 = list(self.matches), self.used1, self.used2
        new.matches12, new.chunks = self.matches12, self.chunks
        new.idx, new.last_end, new.distance = self.idx, self.last_end, self.distance
        return new

    def take(self, link: _Link) -> None:
        """The jar's statistics update for a match (the distance is not added here)."""
        self.matches12 += link.gain
        if self.last_end != -1 and link.match.match_start != self.last_end:
            self.chunks += 1
        self.idx = link.ref_end
        self.last_end = link.test_end


class _Link:
    """A candidate match with what the search reads of it, computed once: its words as bit
    masks, its statistics gain and its ends."""

    __slots__ = ("match", "mask1", "mask2", "gain", "ref_end", "test_end", "distance")

    def __init__(self, m: Match) -> None:
        self.match = m
        self.mask1 = ((1 << m.match_length) - 1) << m.match_start
        self.mask2 = ((1 << m.length) - 1) << m.start
        # The jar truncates each side's weighted count to an int after adding it; the counts
        # are ints and the weighted lengths non-negative, so truncating the lengths is the same.
        w = SEARCH_WEIGHTS[m.module]
        self.gain = int(m.match_length * w) + int(m.length * w)
        self.ref_end = m.start + m.length
        self.test_end = m.match_start + m.match_length
        self.distance = abs(m.start - m.match_start)


def _rank(path: _Path) -> tuple[int, int, int]:
    return -path.matches12, path.chunks, path.distance


def align(test: Sequence[str] | Words, ref: Sequence[str] | Words, *, synonyms: Synonyms | None = None,
          paraphrases: ParaphraseTable | None = None) -> Alignment:
    """The jar's alignment of candidate tokens ``test`` with reference tokens ``ref`` (or
    their :class:`Words`, built with the same ``paraphrases``)."""
    if synonyms is None:
        synonyms = Synonyms({}, {})
    test = test if isinstance(test, Words) else Words(test, synonyms=synonyms, paraphrases=paraphrases)
    ref = ref if isinstance(ref, Words) else Words(ref, synonyms=synonyms, paraphrases=paraphrases)
    per_ref = candidates(test, ref, paraphrases=paraphrases)
    n2 = len(ref.tokens)
    links = [[_Link(m) for m in ms] for ms in per_ref]
    # A word covered by several candidates (bit set in "shared") is contested.
    seen1 = seen2 = shared1 = shared2 = 0
    for ls in links:
        for link in ls:
            shared1 |= seen1 & link.mask1
            shared2 |= seen2 & link.mask2
            seen1 |= link.mask1
            seen2 |= link.mask2
    initial = _Path(n2)
    # Matches without competition are fixed before the search (their statistics are added
    # when the search reaches them).
    contested = False
    for j, ls in enumerate(links):
        if len(ls) == 1 and not (ls[0].mask1 & shared1 or ls[0].mask2 & shared2):
            initial.matches[j] = ls[0].match
            initial.used1 |= ls[0].mask1
            initial.used2 |= ls[0].mask2
        elif ls:
            contested = True
    if not contested:  # one path only: the search would take every fixed match in order
        chosen = [m for m in initial.matches if m is not None]
        return Alignment(matches=chosen, chunks=count_chunks(chosen, n2))
    paths = [initial]
    for current in range(n2 + 1):
        ranked = sorted(paths, key=_rank)[:BEAM] if len(paths) > 1 else paths
        paths = []
        bit = 1 << current
        for path in ranked:
            if current == n2:
                if path.last_end != -1:
                    path.chunks += 1
                paths.append(path)
                continue
            if path.used2 & bit:
                if current < path.idx:
                    paths.append(path)
                elif path.matches[path.idx] is not None:  # a fixed match: its start's only one
                    link = links[path.idx][0]
                    path.take(link)
                    path.distance += link.distance
                    paths.append(path)
                continue
            for link in links[current]:
                if path.used2 & link.mask2 or path.used1 & link.mask1:
                    continue
                new = path.copy()
                new.used1 |= link.mask1
                new.used2 |= link.mask2
                new.matches[current] = link.match
                new.take(link)
                path.distance += link.distance  # the jar's bug: the parent's
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
