"""METEOR 1.5's ``-norm`` text normalisation and tokenisation, as the jar runs it
(``Normalizer.normalizeLine`` for English keeping punctuation, then a lower-casing of the
line and a split on the five characters of Java's ``StringTokenizer``).

Java regular expressions without UNICODE_CHARACTER_CLASS: ``\\s`` is ASCII whitespace plus
vertical tab, digits are 0-9, lower-case letters a-z. The letters the normaliser keeps
together are Latin (with Latin-1 and Latin Extended-A) and Cyrillic; every other symbol,
Greek and CJK included, becomes a token of its own.

Example:
    >>> tokens("It's the man's dog; he can't go.")
    ['it', "'s", 'the', 'man', "'s", 'dog', ';', 'he', 'can', "'t", 'go', '.']
    >>> tokens("U.S.-based firm e.g. Mr. Smith")
    ['us', 'based', 'firm', 'eg', 'mr.', 'smith']
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# The normaliser's letters (Normalizer.java ``alpha``) and letters-or-digits.
_ALPHA = ("A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e"
          "\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f")
_ALNUM = "0-9" + _ALPHA
_JAVA_SPACE = " \t\n\x0b\f\r"  # Java's \s

_SEPARATE_OTHER = re.compile(f"([^{_ALNUM}{_JAVA_SPACE}.'`,\\-\u2018\u2019])")
_MULTI_DOT = re.compile(r"\.([.]+)")
_DOTMULTI_NEXT = re.compile(r"DOTMULTI\.([^.])")
_COMMAS = (re.compile(r"([^0-9])[,]([^0-9])"), re.compile(r"([0-9])[,]([^0-9])"),
           re.compile(r"([^0-9])[,]([0-9])"))
_SINGLE_QUOTES = re.compile("([`\u2018\u2019])")
_DOUBLE_QUOTES = re.compile("([\u201c\u201d]|'')")
_INNER_DASH = re.compile(f"([{_ALNUM}.])[-]([{_ALNUM}])")
_APOSTROPHES = (
    (re.compile(f"([^{_ALPHA}])[']([^{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([^{_ALPHA}0-9])[']([{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([{_ALPHA}])[']([^{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([{_ALPHA}])[']([{_ALPHA}])"), r"\1 '\2"),
    (re.compile("([0-9])[']([s])"), r"\1 '\2"),
)
_HAS_ALPHA = re.compile(f"[{_ALPHA}]")
_LOWER_START = re.compile("^[a-z]")
_DIGIT_START = re.compile("^[0-9]+")
_WIDE_SPACES = re.compile("[\u2000-\u200a\u202f\u205f\u3000\u00a0]+")
# java.util.StringTokenizer's default delimiters.
_TOKEN_SPLIT = re.compile("[ \t\n\r\f]+")

# Nonbreaking-prefix kinds (the jar's ``nonbreaking/english.prefixes``).
ANY, NUMERIC_ONLY = 1, 2


def parse_prefixes(text: str) -> dict[str, int]:
    """The prefix file: one prefix per line, ``#NUMERIC_ONLY#`` after it for the ones that
    stay attached only before a number; empty lines and ``#`` comments skipped.

    Example:
        >>> parse_prefixes("# comment\\nMr\\n\\nNo #NUMERIC_ONLY#\\n")
        {'Mr': 1, 'No': 2}
    """
    prefixes = {}
    for line in text.split("\n"):
        words = [w for w in _TOKEN_SPLIT.split(line) if w]
        if not words or words[0].startswith("#"):
            continue
        prefixes[words[0]] = NUMERIC_ONLY if len(words) > 1 and words[1] == "#NUMERIC_ONLY#" else ANY
    return prefixes


def java_trim(text: str) -> str:
    """Java's ``String.trim``: every character up to U+0020 at either end."""
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def _split(text: str) -> list[str]:
    return [w for w in _TOKEN_SPLIT.split(text) if w]


def normalize(line: str, prefixes: Mapping[str, int]) -> str:
    """``Normalizer.normalizeLine`` for English, punctuation kept (before lower-casing)."""
    s = " " + line + " "
    s = _SEPARATE_OTHER.sub(r" \1 ", s)
    s = _MULTI_DOT.sub(r" DOTMULTI\1", s)
    while "DOTMULTI." in s:
        s = _DOTMULTI_NEXT.sub(r"DOTDOTMULTI \1", s)
        s = s.replace("DOTMULTI.", "DOTDOTMULTI")
    for comma in _COMMAS:
        s = comma.sub(r"\1 , \2", s)
    s = _SINGLE_QUOTES.sub("'", s)
    s = _DOUBLE_QUOTES.sub(' " ', s)
    s = s.replace("\u2013", "-").replace("--", "-")
    s = _INNER_DASH.sub(r"\1 \2", s)
    for pattern, replacement in _APOSTROPHES:
        s = pattern.sub(replacement, s)
    words = _split(s)
    out = []
    for i, word in enumerate(words):
        if len(word) > 1 and word.endswith("."):
            prefix = word[:-1]
            kind = prefixes.get(prefix)
            following = words[i + 1] if i + 1 < len(words) else None
            if "." in prefix and _HAS_ALPHA.search(prefix):
                word = word.replace(".", "")
            elif kind == ANY or (following is not None and _LOWER_START.match(following)):
                pass
            elif kind == NUMERIC_ONLY and following is not None and _DIGIT_START.match(following):
                pass
            else:
                word = prefix + " ."
        out.append(word + " ")
    s = "".join(out)
    while "DOTDOTMULTI" in s:
        s = s.replace("DOTDOTMULTI", "DOTMULTI.")
    s = s.replace("DOTMULTI", ".")
    return java_trim(_WIDE_SPACES.sub(" ", s))


def tokens(line: str, prefixes: Mapping[str, int] | None = None) -> list[str]:
    """The tokens METEOR aligns: normalised, lower-cased, split on " \\t\\n\\r\\f".

    ``prefixes``: the nonbreaking prefixes (default: the jar's English file).
    """
    if prefixes is None:
        from benchmark.captions.meteor15.resources import english_prefixes

        prefixes = english_prefixes()
    return _split(normalize(line, prefixes).lower())
