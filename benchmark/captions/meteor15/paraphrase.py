"""METEOR 1.5's English paraphrase table as a memory-mapped cache, and its matcher.

The table (pycocoevalcap's ``meteor/data/paraphrase-en.gz``: 5,274,084 records of three lines,
a probability METEOR ignores, a phrase and its paraphrase, 1-7 tokens each) is converted once
into numpy arrays under the user cache folder, keyed by the file's size and modification
time: token ids, each record's two phrases as token ids, and 64-bit phrase hashes sorted for
lookup. A cold process then maps them (no parsing) and looks up only the spans of the two
sentences it aligns.

METEOR reads every record in both directions: a span of the reference equal to a record's
phrase matches a span of the candidate equal to its paraphrase (pass 1), and a span of the
candidate equal to a record's phrase matches a span of the reference equal to its paraphrase
(pass 2). :func:`paraphrase_matches` yields them in the jar's order.

Example:
    >>> table = ParaphraseTable.build_from_lines(["0.5", "a big", "a large", "0.3", "big", "huge"])
    >>> [(m.start, m.length, m.match_start, m.match_length)
    ...  for m in paraphrase_matches(table, ["a", "huge", "dog"], ["a", "big", "dog"])]
    [(1, 1, 1, 1)]
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.atomic import atomic_stream

MAX_PHRASE = 7
_SPLIT = re.compile("[ \t\n\r\f]+")
_MULTIPLIER = 0x9E3779B97F4A7C15
# A second, independent key checks at conversion time that no two phrases share a key.
_CHECK_MULTIPLIER = 0xC2B2AE3D27D4EB4F
_MASK = (1 << 64) - 1
_FORMAT = 1  # bump when the cache layout changes
_ARRAYS = ("vocab", "first_offsets", "first_tokens", "second_offsets", "second_tokens",
           "first_sorted_keys", "first_sorted_records", "second_keys")


@dataclass(frozen=True)
class Match:
    """A candidate alignment link: reference span [start, start + length) with candidate
    span [match_start, match_start + match_length), found by ``module`` (0 exact, 1 stem,
    2 synonym, 3 paraphrase)."""

    start: int
    length: int
    match_start: int
    match_length: int
    module: int


def token_hash(token: str) -> int:
    """A stable 64-bit hash of a token (its UTF-8 bytes), which indexes the vocabulary."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _phrase_keys(tokens: np.ndarray, offsets: np.ndarray, multiplier: int = _MULTIPLIER) -> np.ndarray:
    """One 64-bit key per phrase of token ids (flat ``tokens`` cut at ``offsets``): the
    polynomial of the ids + 1, modulo 2**64, as :func:`_spans` computes it."""
    lengths = np.diff(offsets).astype(np.int64)
    keys = np.zeros(len(lengths), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for depth in range(int(lengths.max(initial=0))):
            live = lengths > depth
            ids = tokens[offsets[:-1][live] + depth].astype(np.uint64) + np.uint64(1)
            keys[live] = keys[live] * np.uint64(multiplier) + ids
    return keys


class ParaphraseTable:
    """The converted table: ``vocab`` (sorted token hashes; a token's id is its position),
    each record's first and second phrase as token ids, the first phrases' keys sorted (with
    the records in file order among equal keys) and the second phrases' keys."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        for name in _ARRAYS:
            setattr(self, name, arrays[name])
        self._ids: dict[str, int] = {}  # token -> vocabulary id, filled as tokens are seen

    @classmethod
    def build_from_lines(cls, lines: Iterable[str], *, progress: bool = False) -> ParaphraseTable:
        """Convert the table's lines (probability, phrase, paraphrase, ...)."""
        from tqdm import tqdm

        vocab: dict[str, int] = {}
        phrases: list[list[int]] = [[], []]
        offsets: list[list[int]] = [[0], [0]]
        lines = iter(lines)
        bar = tqdm(total=None, desc="METEOR paraphrase table", unit="record", disable=not progress, mininterval=1)
        for _probability in lines:
            try:
                pair = (next(lines), next(lines))
            except StopIteration:
                raise ValueError("the paraphrase table ends inside a record") from None
            for side, phrase in enumerate(pair):
                words = [w for w in _SPLIT.split(phrase) if w]
                phrases[side].extend(vocab.setdefault(w, len(vocab)) for w in words)
                offsets[side].append(len(phrases[side]))
            bar.update(1)
        bar.close()
        # Ids are positions in the sorted token hashes, so that a lookup needs no dictionary.
        hashes = np.array([token_hash(w) for w in vocab], dtype=np.uint64)
        order = np.argsort(hashes, kind="stable")
        if len(hashes) and (np.diff(hashes[order]) == 0).any():
            raise ValueError("two paraphrase-table tokens share a 64-bit hash")
        rank = np.empty(len(order), dtype=np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        first_tokens = rank[np.array(phrases[0], dtype=np.int64)] if phrases[0] else np.zeros(0, np.int32)
        second_tokens = rank[np.array(phrases[1], dtype=np.int64)] if phrases[1] else np.zeros(0, np.int32)
        first_offsets = np.array(offsets[0], dtype=np.int64)
        second_offsets = np.array(offsets[1], dtype=np.int64)
        first_keys = _phrase_keys(first_tokens, first_offsets)
        second_keys = _phrase_keys(second_tokens, second_offsets)
        records = np.argsort(first_keys, kind="stable").astype(np.int32)
        for keys, tokens, offsets in ((first_keys, first_tokens, first_offsets),
                                      (second_keys, second_tokens, second_offsets)):
            _check_no_collision(keys, _phrase_keys(tokens, offsets, _CHECK_MULTIPLIER))
        return cls({"vocab": hashes[order], "first_offsets": first_offsets, "first_tokens": first_tokens,
                    "second_offsets": second_offsets, "second_tokens": second_tokens,
                    "first_sorted_keys": first_keys[records], "first_sorted_records": records,
                    "second_keys": second_keys})

    def save(self, folder: Path) -> None:
        """Write each array as ``folder/NAME.npy`` (atomically)."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            atomic_stream(folder / f"{name}.npy", lambda handle, name=name: np.save(handle, getattr(self, name)))

    @classmethod
    def load(cls, folder: Path) -> ParaphraseTable:
        """Memory-map the arrays written by :meth:`save` (as plain arrays: numpy's memmap
        class makes every element access a Python call)."""
        return cls({name: np.load(folder / f"{name}.npy", mmap_mode="r").view(np.ndarray) for name in _ARRAYS})

    def ids(self, tokens: Sequence[str]) -> list[int]:
        """Each token's id in the table's vocabulary, -1 for tokens it does not hold."""
        cache = self._ids
        new = [t for t in dict.fromkeys(tokens) if t not in cache]
        if new and len(self.vocab):
            hashes = np.array([token_hash(t) for t in new], dtype=np.uint64)
            found = np.minimum(np.searchsorted(self.vocab, hashes), len(self.vocab) - 1)
            hit = np.asarray(self.vocab[found]) == hashes
            cache.update((t, int(i) if ok else -1) for t, i, ok in zip(new, found.tolist(), hit.tolist()))
        return [cache.get(t, -1) for t in tokens]

    def phrases_of(self, ids: Sequence[int], spans: list[tuple[int, int, int]] | None = None
                   ) -> list[tuple[int, int, np.ndarray]]:
        """(start, depth, records in file order) of every span ``ids[start:start + depth]``
        that is a record's first phrase, by start then depth: the jar's walk down its trie of
        first phrases from each position, in one lookup. ``spans``: ``_spans(ids)`` if the
        caller has it."""
        spans = _spans(ids) if spans is None else spans
        keys = [key for _, _, key in spans]
        if not keys:
            return []
        wanted = np.array(keys, dtype=np.uint64)
        lo = np.searchsorted(self.first_sorted_keys, wanted, side="left").tolist()
        hi = np.searchsorted(self.first_sorted_keys, wanted, side="right").tolist()
        found = []
        for (start, depth, _), a, b in zip(spans, lo, hi):
            # Keys are unique per phrase (checked at conversion): one record shows the span.
            if a < b and self._phrase(0, int(self.first_sorted_records[a])) == list(ids[start:start + depth]):
                found.append((start, depth, np.asarray(self.first_sorted_records[a:b]).astype(np.int64)))
        return found

    def _phrase(self, side: int, record: int) -> list[int]:
        offsets, tokens = ((self.first_offsets, self.first_tokens) if side == 0
                           else (self.second_offsets, self.second_tokens))
        return np.asarray(tokens[offsets[record]:offsets[record + 1]]).tolist()


def _check_no_collision(keys: np.ndarray, check: np.ndarray) -> None:
    """Raise if two different phrases share a key: equal keys must have equal check keys."""
    order = np.argsort(keys, kind="stable")
    same = keys[order][1:] == keys[order][:-1]
    if (check[order][1:][same] != check[order][:-1][same]).any():
        raise ValueError("two paraphrase-table phrases share a 64-bit key")


def _spans(ids: Sequence[int]) -> list[tuple[int, int, int]]:
    """(start, length, key) of every span of up to 7 known tokens, by start then length."""
    spans = []
    n = len(ids)
    for start in range(n):
        key = 0
        for end in range(start, min(start + MAX_PHRASE, n)):
            token = ids[end]
            if token < 0:
                break
            key = (key * _MULTIPLIER + token + 1) & _MASK
            spans.append((start, end - start + 1, key))
    return spans


def _span_starts(spans: Sequence[tuple[int, int, int]]) -> dict[int, list[int]]:
    """Key of every span -> its start positions, ascending."""
    starts: dict[int, list[int]] = {}
    for start, _, key in spans:
        starts.setdefault(key, []).append(start)
    return starts


class Sentence:
    """What the paraphrase matcher needs of one token list, computed once however many
    pairs it is in: its token ids, the start positions of each of its spans (by key), and
    every table record whose first phrase is one of its spans, in the jar's order (start,
    length, file order), with the key of the record's second phrase."""

    def __init__(self, table: ParaphraseTable, words: Sequence[str]) -> None:
        self.ids = table.ids(words)
        spans = _spans(self.ids)
        self.span_starts = _span_starts(spans)
        found = table.phrases_of(self.ids, spans)
        self.hit_start = [start for start, _, records in found for _ in range(len(records))]
        self.hit_depth = [depth for _, depth, records in found for _ in range(len(records))]
        records = np.concatenate([records for _, _, records in found]) if found else np.zeros(0, np.int64)
        # Python lists: each pair reads them in a loop of dictionary lookups.
        self.hit_record: list[int] = records.tolist()
        self.hit_key: list[int] = np.asarray(table.second_keys[records]).tolist() if found else []


def _pass(table: ParaphraseTable, phrase_side: Sentence, other_side: Sentence
          ) -> Iterator[tuple[int, int, int, int]]:
    """(phrase start, phrase length, paraphrase start, paraphrase length) in the jar's order:
    phrase start, depth, record (file order), paraphrase start."""
    starts_of = other_side.span_starts
    if not starts_of:
        return
    for h, key in enumerate(phrase_side.hit_key):
        starts = starts_of.get(key)  # the other side's spans with this paraphrase's key
        if starts is None:
            continue
        paraphrase = table._phrase(1, phrase_side.hit_record[h])
        for at in starts:
            if other_side.ids[at:at + len(paraphrase)] == paraphrase:
                yield phrase_side.hit_start[h], phrase_side.hit_depth[h], at, len(paraphrase)


def paraphrase_matches(table: ParaphraseTable, test: Sequence[str] | Sentence,
                       ref: Sequence[str] | Sentence) -> list[Match]:
    """Paraphrase candidates of a candidate (``test``) and reference token list (or their
    :class:`Sentence`), in the order the jar adds them: first the reference phrases (by
    reference start, length, record, candidate start), then the candidate phrases (by
    candidate start, ...), each added to the list of its reference start."""
    test = test if isinstance(test, Sentence) else Sentence(table, test)
    ref = ref if isinstance(ref, Sentence) else Sentence(table, ref)
    found = [Match(start, length, at, at_length, 3) for start, length, at, at_length in _pass(table, ref, test)]
    found += [Match(at, at_length, start, length, 3) for start, length, at, at_length in _pass(table, test, ref)]
    return found


def default_table_path() -> Path:
    """pycocoevalcap's ``meteor/data/paraphrase-en.gz``."""
    from benchmark.captions.meteor import default_meteor_jar

    return default_meteor_jar().parent / "data" / "paraphrase-en.gz"


def table_cache_dir() -> Path:
    """Where converted tables live: ``$BENCHMARK_METEOR_CACHE``, else
    ``~/.cache/dvoc-benchmark/meteor-1.5``. Not under ``$BENCHMARK_CACHE_DIR`` (the score
    cache), so that a fresh score cache does not convert the table again."""
    env = os.environ.get("BENCHMARK_METEOR_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "dvoc-benchmark" / "meteor-1.5"


def converted(source: Path, kind: str, build: Callable[[Path], None], *, cache_dir: Path | None = None) -> Path:
    """The cache folder of ``source`` converted by ``build(folder)`` (run on first use),
    keyed by the source's size and modification time. Processes that start together
    convert it once: the others wait on a lock file."""
    stat = source.stat()
    folder = Path(cache_dir or table_cache_dir()) / f"{kind}-v{_FORMAT}-{stat.st_size}-{int(stat.st_mtime)}"
    if not (folder / "complete").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "lock", "w") as lock:
            try:
                import fcntl

                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:  # no advisory locks here: at worst two processes convert it
                pass
            if not (folder / "complete").is_file():
                build(folder)
                (folder / "complete").write_text(os.fspath(source) + "\n")
    return folder


def cached_table(source: Path | None = None, *, cache_dir: Path | None = None,
                 progress: bool = True) -> ParaphraseTable:
    """The table of ``source`` (default pycocoevalcap's), converted on first use into
    ``cache_dir`` (default :func:`table_cache_dir`) and memory-mapped."""
    source = Path(source or default_table_path())

    def build(folder: Path) -> None:
        with gzip.open(source, "rt", encoding="utf-8") as handle:
            ParaphraseTable.build_from_lines((line.rstrip("\n") for line in handle), progress=progress).save(folder)

    return ParaphraseTable.load(converted(source, "paraphrase", build, cache_dir=cache_dir))
