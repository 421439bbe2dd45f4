"""The English data of METEOR 1.5, read from the files pycocoevalcap installs: the resources
inside ``meteor-1.5.jar`` (nonbreaking prefixes, function words, WordNet synonyms) and the
paraphrase table ``data/paraphrase-en.gz`` next to it. Nothing is downloaded.

Example:
    >>> english_prefixes()["Mr"], english_prefixes()["No"]
    (1, 2)
    >>> len(function_words()), "the" in function_words()
    (93, True)
"""

from __future__ import annotations

import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from benchmark.atomic import atomic_stream
from benchmark.captions.meteor15.normalize import parse_prefixes
from benchmark.captions.meteor15.paraphrase import converted, token_hash


def _jar() -> Path:
    from benchmark.captions.meteor import default_meteor_jar

    return default_meteor_jar()


def read_jar_text(name: str, jar: Path | None = None) -> str:
    """A resource file of the jar as text (UTF-8, as METEOR reads it)."""
    with zipfile.ZipFile(jar or _jar()) as archive:
        return archive.read(name).decode("utf-8")


@functools.cache
def english_prefixes() -> dict[str, int]:
    """Nonbreaking prefixes (``nonbreaking/english.prefixes``)."""
    return parse_prefixes(read_jar_text("nonbreaking/english.prefixes"))


@functools.cache
def function_words() -> frozenset[str]:
    """English function words (``function/english.words``): one per line, lines kept as they
    are (METEOR does not trim them), the empty one excluded."""
    return frozenset(line for line in read_jar_text("function/english.words").split("\n") if line)


def _check_hash(word: str) -> int:
    """A second 64-bit hash, independent of :func:`token_hash`: two words sharing both are
    not expected in practice (and the conversion refuses them)."""
    digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8, person=b"meteor-syn").digest()
    return int.from_bytes(digest, "little")


class SynsetIndex:
    """WordNet synsets of the jar's ``synonym/english.synsets`` (147,306 words), as sorted
    word hashes, a check hash and each word's synset ids: memory-mapped, so that a process
    reads only the words it looks up. ``get`` and ``in`` behave as on the file's dict.

    Example:
        >>> index = SynsetIndex.build("cat\\n1 2\\ndog\\n3\\n")
        >>> index.get("cat"), "dog" in index, index.get("cow", frozenset())
        (frozenset({1, 2}), True, frozenset())
    """

    _ARRAYS = ("keys", "checks", "offsets", "ids")

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.keys, self.checks, self.offsets, self.ids = (arrays[name] for name in self._ARRAYS)

    @classmethod
    def build(cls, text: str) -> SynsetIndex:
        """From the file's line pairs: a word, then its space-separated synset ids (a word
        seen twice keeps its last line, as the jar's map does)."""
        lines = text.split("\n")
        words = {lines[i]: [int(x) for x in lines[i + 1].split()] for i in range(0, len(lines) - 1, 2)}
        keys = np.array([token_hash(w) for w in words], dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        if len(keys) and (np.diff(keys[order]) == 0).any():
            raise ValueError("two synonym-file words share a 64-bit hash")
        lists = list(words.values())
        sizes = np.array([len(lists[i]) for i in order], dtype=np.int64)
        return cls({"keys": keys[order],
                    "checks": np.array([_check_hash(w) for w in words], dtype=np.uint64)[order],
                    "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                    "ids": np.array([x for i in order for x in lists[i]], dtype=np.int64)})

    def save(self, folder: Path) -> None:
        for name in self._ARRAYS:
            atomic_stream(folder / f"{name}.npy", lambda handle, name=name: np.save(handle, getattr(self, name)))

    @classmethod
    def load(cls, folder: Path) -> SynsetIndex:
        return cls({name: np.load(folder / f"{name}.npy", mmap_mode="r").view(np.ndarray) for name in cls._ARRAYS})

    def _row(self, word: str) -> int:
        if not len(self.keys):
            return -1
        key = np.uint64(token_hash(word))
        row = int(np.searchsorted(self.keys, key))
        if row < len(self.keys) and self.keys[row] == key and int(self.checks[row]) == _check_hash(word):
            return row
        return -1

    def get(self, word: str, default: frozenset[int] = frozenset()) -> frozenset[int]:
        row = self._row(word)
        return default if row < 0 else frozenset(self.ids[self.offsets[row]:self.offsets[row + 1]].tolist())

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._row(word) >= 0


@functools.cache
def synsets() -> SynsetIndex:
    """The jar's English synsets, converted once into the METEOR cache folder."""
    jar = _jar()

    def build(folder: Path) -> None:
        SynsetIndex.build(read_jar_text("synonym/english.synsets", jar)).save(folder)

    return SynsetIndex.load(converted(jar, "synsets", build))


@functools.cache
def inflection_bases() -> dict[str, list[str]]:
    """``synonym/english.exceptions``: each inflected form -> its base forms."""
    lines = read_jar_text("synonym/english.exceptions").split("\n")
    bases: dict[str, list[str]] = {}
    for i in range(0, len(lines) - 1, 2):
        for form in lines[i + 1].split():
            bases.setdefault(form, []).append(lines[i])
    return bases
