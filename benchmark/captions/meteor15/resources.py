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
import zipfile
from pathlib import Path

from benchmark.captions.meteor15.normalize import parse_prefixes


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
