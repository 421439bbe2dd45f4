"""Dataset statistics and data cards: compute what a ground-truth file holds, check a card.

A data card (``data_cards/*.md``) is Markdown with YAML front matter holding the Hugging Face
dataset-card fields and a ``statistics:`` block, followed by the Datasheets-for-Datasets
sections (:data:`REQUIRED_SECTIONS`). The ``statistics:`` block maps a split name to numbers
plus a ``source`` saying where they come from; ``null`` means "not published" and a string
keeps a rounded number exactly as published ("5.4k"); neither is compared with data.

Statistics (:func:`dataset_statistics`) of a ground truth in the COCO-video format or the
per-track (YouTube-VIS style) format:

- ``videos``, ``frames`` (images; per-track: the sum of ``length``),
- ``tracks`` (distinct (video, track_id); per-track: annotations), ``captioned_tracks`` (tracks
  with at least one non-empty caption), ``captions`` (distinct non-empty captions per track,
  summed over tracks),
- ``boxes`` / ``masks`` (per-frame boxes / masks present),
- ``objects_per_video_mean|median|max`` (tracks per video, videos without tracks count as 0),
- ``words_per_caption_mean`` (whitespace-separated words over the ``captions`` counted above),
- ``vocabulary_size`` (distinct lower-cased words), ``categories`` (entries of
  ``categories``), ``categories_used`` (distinct ``category_id`` of the tracks).

Example:
    >>> from benchmark.datacard import dataset_statistics
    >>> gt = {"videos": [{"id": 1}], "images": [{"id": 1, "video_id": 1}],
    ...       "annotations": [{"image_id": 1, "track_id": 5, "bbox": [0, 0, 1, 1],
    ...                        "caption": "a red circle"}], "categories": []}
    >>> dataset_statistics(gt)["words_per_caption_mean"]
    3.0
"""

from __future__ import annotations

import re
import statistics as pystats
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.errors import InputError
from benchmark.io import read_json

#: Statistics computed from a ground-truth file, in display order.
STAT_KEYS: tuple[str, ...] = (
    "videos", "frames", "tracks", "captioned_tracks", "captions", "boxes", "masks",
    "objects_per_video_mean", "objects_per_video_median", "objects_per_video_max",
    "words_per_caption_mean", "vocabulary_size", "categories", "categories_used",
)

#: Front-matter fields every card must have (Hugging Face dataset-card fields + statistics).
REQUIRED_FIELDS: tuple[str, ...] = (
    "pretty_name", "license", "language", "task_categories", "size_categories",
    "source_datasets", "annotations_creators", "language_creators", "multilinguality",
    "statistics",
)

#: ``##`` sections every card must have (Datasheets for Datasets, Gebru et al.).
REQUIRED_SECTIONS: tuple[str, ...] = (
    "Motivation", "Composition", "Collection and annotation", "Preprocessing", "Uses",
    "Distribution and licence", "Maintenance", "Known biases and limitations",
)

#: A word of a lower-cased caption, for vocabularies and lengths (one rule for every statistic).
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _captions_of(value: Any) -> list[str]:
    # A caption field is a string ("" = not captioned) or a list of reference strings.
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []


def _require_list(data: dict[str, Any], key: str, source: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise InputError("missing or not a list", source=source, field=key)
    return value


def dataset_statistics(gt: dict[str, Any] | str | Path) -> dict[str, Any]:
    """Statistics of a ground truth (path or dict): :data:`STAT_KEYS` plus ``category_tracks``.

    ``category_tracks`` maps each category name to its number of tracks.

    Example:
        >>> from benchmark.synthetic import generate
        >>> stats = dataset_statistics(generate(num_videos=2, seed=0).gt)
        >>> stats["videos"], stats["frames"]
        (2, 32)
    """
    data, source = read_json(gt, what="ground truth")
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with videos and annotations", source=source)
    videos = _require_list(data, "videos", source)
    annotations = _require_list(data, "annotations", source)
    categories = data.get("categories") or []
    per_track = any("bboxes" in a or "segmentations" in a for a in annotations[:1]) or any(
        "file_names" in v for v in videos[:1])

    # track key -> (video id, category id, set of captions)
    tracks: dict[Any, tuple[Any, Any, set[str]]] = {}
    boxes = masks = 0
    if per_track:
        frames = 0
        for index, video in enumerate(videos):
            length = video.get("length", len(video.get("file_names", [])))
            if not isinstance(length, int):
                raise InputError("not an integer", source=source, record=index, field="length")
            frames += length
        for index, ann in enumerate(annotations):
            if "video_id" not in ann:
                raise InputError("missing", source=source, record=index, field="video_id")
            key = ann.get("id", index)
            tracks[key] = (ann["video_id"], ann.get("category_id"),
                           set(_captions_of(ann.get("caption", ann.get("captions")))))
            boxes += sum(b is not None for b in ann.get("bboxes") or [])
            masks += sum(m is not None for m in ann.get("segmentations") or [])
    else:
        images = _require_list(data, "images", source)
        frames = len(images)
        video_of_image = {img.get("id"): img.get("video_id") for img in images}
        for index, ann in enumerate(annotations):
            for field in ("image_id", "track_id"):
                if field not in ann:
                    raise InputError("missing", source=source, record=index, field=field)
            video_id = ann.get("video_id", video_of_image.get(ann["image_id"]))
            if video_id is None:
                raise InputError(f"image {ann['image_id']} is not in images", source=source,
                                 record=index, field="image_id")
            key = (video_id, ann["track_id"])
            entry = tracks.setdefault(key, (video_id, ann.get("category_id"), set()))
            entry[2].update(_captions_of(ann.get("caption", ann.get("captions"))))
            boxes += ann.get("bbox") is not None
            masks += ann.get("segmentation") is not None

    per_video = {v.get("id"): 0 for v in videos}
    for video_id, _, _ in tracks.values():
        per_video[video_id] = per_video.get(video_id, 0) + 1
    counts = list(per_video.values()) or [0]
    captions = [c for _, _, caps in tracks.values() for c in sorted(caps)]
    words = [len(c.split()) for c in captions]
    vocabulary = {w for c in captions for w in WORD.findall(c.lower())}
    name_of = {c.get("id"): c.get("name", str(c.get("id"))) for c in categories}
    category_tracks: dict[str, int] = {}
    for _, category, _ in tracks.values():
        name = name_of.get(category, str(category))
        category_tracks[name] = category_tracks.get(name, 0) + 1
    return {
        "videos": len(videos),
        "frames": frames,
        "tracks": len(tracks),
        "captioned_tracks": sum(1 for _, _, caps in tracks.values() if caps),
        "captions": len(captions),
        "boxes": boxes,
        "masks": masks,
        "objects_per_video_mean": round(sum(counts) / len(counts), 4),
        "objects_per_video_median": float(pystats.median(counts)),
        "objects_per_video_max": max(counts),
        "words_per_caption_mean": round(sum(words) / len(words), 4) if words else 0.0,
        "vocabulary_size": len(vocabulary),
        "categories": len(categories),
        "categories_used": len({c for _, c, _ in tracks.values() if c is not None}),
        "category_tracks": dict(sorted(category_tracks.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


@dataclass(frozen=True)
class DataCard:
    """A parsed data card: front matter (``metadata``) and ``##`` sections by title."""

    path: Path
    metadata: dict[str, Any]
    sections: dict[str, str]


def parse_card(path: str | Path) -> DataCard:
    """Read a Markdown data card with YAML front matter.

    Example:
        >>> card = parse_card("data_cards/sample.md")     # doctest: +SKIP
        >>> card.metadata["pretty_name"]                   # doctest: +SKIP
        'DVOC synthetic shapes sample'
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError("file not found", source=str(path)) from exc
    match = re.match(r"---\s*\n(.*?)\n---\s*\n(.*)", text, flags=re.DOTALL)
    if match is None:
        raise InputError("no YAML front matter (a block between '---' lines at the top)",
                         source=str(path))
    try:
        metadata = yaml.safe_load(match.group(1))
    except yaml.YAMLError as exc:
        raise InputError(f"front matter is not valid YAML ({exc})", source=str(path)) from exc
    if not isinstance(metadata, dict):
        raise InputError("front matter is not a mapping", source=str(path))
    sections: dict[str, str] = {}
    title = None
    for line in match.group(2).splitlines():
        heading = re.match(r"##\s+(.+?)\s*$", line)
        if heading and not line.startswith("###"):
            title = heading.group(1)
            sections[title] = ""
        elif title is not None:
            sections[title] += line + "\n"
    return DataCard(path, metadata, {k: v.strip() for k, v in sections.items()})


def validate_card(card: DataCard) -> list[str]:
    """Problems with a card's structure (empty list when it is complete).

    Checks the required front-matter fields and sections (non-empty), and that
    ``statistics`` maps each split to numbers, strings or nulls with a ``source``.

    Example:
        >>> validate_card(parse_card("data_cards/sample.md"))   # doctest: +SKIP
        []
    """
    problems = [f"front matter: missing field {f!r}" for f in REQUIRED_FIELDS
                if f not in card.metadata]
    for section in REQUIRED_SECTIONS:
        if section not in card.sections:
            problems.append(f"missing section '## {section}'")
        elif not card.sections[section]:
            problems.append(f"section '## {section}' is empty")
    stats = card.metadata.get("statistics")
    if "statistics" in card.metadata:
        if not isinstance(stats, dict) or not stats:
            problems.append("statistics: expected a mapping from split name to numbers")
        else:
            for split, values in stats.items():
                if not isinstance(values, dict):
                    problems.append(f"statistics.{split}: expected a mapping")
                    continue
                if not isinstance(values.get("source"), str) or not values["source"].strip():
                    problems.append(f"statistics.{split}: missing 'source' (where the numbers "
                                    "come from)")
                for key, value in values.items():
                    if key not in {"source", "note"} and (
                        isinstance(value, bool) or not isinstance(value, (int, float, str))
                    ) and value is not None:
                        problems.append(f"statistics.{split}.{key}: expected a number, a "
                                        "string (a rounded number as published) or null (not "
                                        f"published), got {value!r}")
    return problems


def _decimals(value: float) -> int:
    # A float in YAML is written with at least one decimal ("14.0"), so that is the minimum.
    text = repr(float(value))
    return 1 if "e" in text else max(1, len(text.split(".")[1].rstrip("0")))


@dataclass(frozen=True)
class Mismatch:
    """One statistic that differs between a card and the data."""

    key: str
    card: float | int
    data: float | int

    def __str__(self) -> str:
        return f"{self.key}: card says {self.card}, data has {self.data}"


def compare_statistics(
    card: DataCard, stats: dict[str, Any], *, split: str | None = None
) -> tuple[list[Mismatch], list[str]]:
    """Compare a card's statistics for one split with computed ones.

    Returns ``(mismatches, not_checked)``: ``not_checked`` lists card keys that are null (not
    published), strings (rounded as published) or not computable from a ground-truth file. Integers must match
    exactly; a float matches when the computed value rounds to the card's value at the
    card's number of decimals (13.9 in a card accepts 13.93). ``split`` may be left out when
    the card has a single split.

    Example:
        >>> card = DataCard(Path("c.md"), {"statistics": {"val": {"source": "x", "videos": 3}}}, {})
        >>> [str(m) for m in compare_statistics(card, {"videos": 2})[0]]
        ['videos: card says 3, data has 2']
    """
    blocks = card.metadata.get("statistics")
    if not isinstance(blocks, dict) or not blocks:
        raise InputError("no statistics block", source=str(card.path), field="statistics")
    if split is None:
        if len(blocks) != 1:
            raise InputError(f"the card has several splits ({', '.join(map(str, blocks))}); "
                             "choose one with --split", source=str(card.path), field="statistics")
        split = next(iter(blocks))
    if split not in blocks or not isinstance(blocks[split], dict):
        raise InputError(f"no split {split!r} (has {', '.join(map(str, blocks))})",
                         source=str(card.path), field="statistics")
    mismatches, not_checked = [], []
    for key, expected in blocks[split].items():
        if key in {"source", "note"}:
            continue
        if expected is None or isinstance(expected, str) or key not in STAT_KEYS:
            not_checked.append(key)
            continue
        actual = stats[key]
        if isinstance(expected, int):
            ok = actual == expected
        else:
            ok = round(float(actual), _decimals(expected)) == float(expected)
        if not ok:
            mismatches.append(Mismatch(key, expected, actual))
    return mismatches, not_checked


def card_statistics_block(stats: dict[str, Any], *, decimals: int = 2) -> dict[str, Any]:
    """The :data:`STAT_KEYS` of ``stats`` as they are written in a card (floats rounded).

    Example:
        >>> card_statistics_block({k: 1 for k in STAT_KEYS} | {"words_per_caption_mean": 5.123})[
        ...     "words_per_caption_mean"]
        5.12
    """
    return {k: round(stats[k], decimals) if isinstance(stats[k], float) else stats[k]
            for k in STAT_KEYS}
