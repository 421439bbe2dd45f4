"""Check a VLM answer before it becomes a ground-truth caption.

A caption is accepted when, after light cleaning (surrounding quotes and an "Answer:" /
"Caption:" label removed, whitespace collapsed), it is a single sentence of a sensible
length, does not mention the visual prompt (boxes, rectangles, contours, highlights...) and is
not a refusal. "box" is allowed when the object or one of the other objects is itself a box
("a cardboard box sits on a shelf").

Example:
    >>> check_caption('Answer: "A cat sleeps on a red sofa."').caption
    'A cat sleeps on a red sofa.'
    >>> check_caption("The dog in the red box runs.").problem
    'mentions the visual prompt ("box")'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

MIN_WORDS = 3
MAX_WORDS = 60

_LABEL = re.compile(r"^\s*(answer|caption|description)\s*:\s*", re.IGNORECASE)
_PROMPT_WORDS = re.compile(
    r"\b(bounding|bbox(es)?|rectangles?|highlight(s|ed|ing)?|outlined?|contours?|"
    r"blurred|(red|green) (frame|marker|line|border)s?|queried)\b",
    re.IGNORECASE,
)
_BOX = re.compile(r"\bbox(es)?\b", re.IGNORECASE)
_REFUSAL = re.compile(
    r"\b(i\s*(cannot|can't|can not|am unable|'m unable|am not able)|unable to (determine|identify|see|describe)|"
    r"not (possible|able) to (determine|identify|see|describe)|sorry|as an ai|"
    r"no (object|box) (is )?(visible|shown|present)|cannot perform the task)\b",
    re.IGNORECASE,
)
# A sentence ends at . ! ? followed by space and a capital letter or digit (abbreviations
# like "St. Mary" are rare in object captions; being strict is the safe side).
_SENTENCE_BREAK = re.compile(r"[.!?]\s+(?=[A-Z0-9\"'])")


@dataclass(frozen=True)
class CaptionCheck:
    """The cleaned caption and, when it is rejected, why (``problem is None`` = accepted)."""

    caption: str
    problem: str | None


def clean_caption(text: str) -> str:
    """Strip labels, quotes and extra whitespace from a model answer."""
    text = _LABEL.sub("", text.strip())
    text = " ".join(text.split())
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


def check_caption(text: str, *, categories: Sequence[str] = ()) -> CaptionCheck:
    """Clean ``text`` and say what is wrong with it, if anything.

    ``categories``: the object's category and the other objects' categories; a category that
    contains the word "box" makes "box" a legitimate word.
    """
    raw_lines = [line for line in text.strip().splitlines() if line.strip()]
    caption = clean_caption(text)
    words = caption.split()
    if not caption:
        return CaptionCheck(caption, "empty answer")
    if _REFUSAL.search(caption):
        return CaptionCheck(caption, "refusal")
    if len(raw_lines) > 1 or _SENTENCE_BREAK.search(caption):
        return CaptionCheck(caption, "more than one sentence")
    mention = _PROMPT_WORDS.search(caption)
    if mention is None and not any(_BOX.search(c) for c in categories):
        mention = _BOX.search(caption)
    if mention is not None:
        return CaptionCheck(caption, f'mentions the visual prompt ("{mention.group(0)}")')
    if len(words) < MIN_WORDS:
        return CaptionCheck(caption, f"too short ({len(words)} words)")
    if len(words) > MAX_WORDS:
        return CaptionCheck(caption, f"too long ({len(words)} words)")
    return CaptionCheck(caption, None)


@dataclass(frozen=True)
class VocapAnswer:
    """The four parts of an answer in VoCap's FORMAT (``problem`` set when it is not one)."""

    category: str
    properties: str
    action: str
    description: str
    problem: str | None = None


# VoCap asks for: 'The video shows a CATEGORY. The subject's properties are PROPERTIES. The
# subject's action is ACTION. DESCRIPTION.' (its quotes are U+2019; models answer with either).
_VOCAP_FORMAT = re.compile(
    r"^The video shows (?:an?|the)?\s*(?P<category>.+?)\.\s+"
    r"The subject['\u2019]s properties are (?P<properties>.+?)\.\s+"
    r"The subject['\u2019]s action is (?P<action>.+?)\.\s+"
    r"(?P<description>\S.*)$", re.DOTALL)
_VOCAP_REFUSAL = re.compile(r"I cannot perform the task for this video", re.IGNORECASE)


def parse_vocap_answer(text: str) -> VocapAnswer:
    """Read an answer to VoCap's prompt; the caption is its DESCRIPTION (the one sentence the
    prompt asks for; VoCap's training captions are such sentences). Its refusal sentence and
    anything outside the FORMAT are problems.

    Example:
        >>> a = parse_vocap_answer("The video shows a dog. The subject\u2019s properties are brown, "
        ...     "small. The subject\u2019s action is running then jumping. A small brown dog runs then jumps.")
        >>> a.category, a.action, a.description
        ('dog', 'running then jumping', 'A small brown dog runs then jumps.')
        >>> parse_vocap_answer("I cannot perform the task for this video.").problem
        'refusal'
    """
    body = " ".join(text.split())
    body = body.strip("\"'`\u2018\u2019 ")
    if _VOCAP_REFUSAL.search(body):
        return VocapAnswer("", "", "", "", problem="refusal")
    match = _VOCAP_FORMAT.match(body)
    if match is None:
        return VocapAnswer("", "", "", "", problem="not in VoCap's answer format")
    description = match["description"].strip()
    return VocapAnswer(match["category"].strip(), match["properties"].strip(), match["action"].strip(),
                       description if description.endswith((".", "!", "?")) else description + ".")
