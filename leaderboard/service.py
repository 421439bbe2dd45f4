"""From an uploaded file to a stored, ranked entry: read, validate, score, store.

Nothing is written before the submission has been fully validated and scored; the entry and
its per-video rows are then stored in one transaction. A file already scored on the track
(same content checksum) is not scored again and adds no row.

Example:
    >>> outcome = score_submission("results.zip", load_tracks()["sample-box"],
    ...     store=Store("sqlite:///lb.db"), team="My lab", method="Baseline")  # doctest: +SKIP
    >>> outcome.created, round(outcome.entry.metrics["CHOTA"], 3)             # doctest: +SKIP
    (True, 0.412)
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

import benchmark
from benchmark.errors import InputError
from benchmark.io import GroundTruth, load_ground_truth
from leaderboard.store import MAX_SUBMISSION_NAME_CHARS, Entry, Store, check_entry_text
from leaderboard.submission import Limits, Submission, read_submission
from leaderboard.tracks import Track
from leaderboard.validation import ValidationReport, load_valid_predictions

CURVE_FIELDS: tuple[str, ...] = ("HOTA", "DetA", "AssA")


@dataclasses.dataclass(frozen=True)
class Scored:
    """What scoring one file produced; ``created`` is False for a resubmitted file."""

    entry: Entry
    created: bool
    report: ValidationReport | None
    warnings: list[str]


def _to_builtin(value: Any) -> Any:
    # numpy scalars from the scorer's DataFrame are not JSON-serialisable.
    return value.item() if hasattr(value, "item") else value


def alpha_curve(gt: GroundTruth, preds: Any, track: Track) -> dict[str, Any]:
    """HOTA, DetA and AssA at each of TrackEval's 19 alphas, for the page's alpha curves.

    Captions are left out: the curves show localisation, and caption scoring at 19 alphas
    would cost more than the official scoring itself.

    Example:
        >>> curve = alpha_curve(gt, det, track)              # doctest: +SKIP
        >>> len(curve["alphas"]), len(curve["HOTA"])           # doctest: +SKIP
        (19, 19)
    """
    result = benchmark.chota(gt, preds, **{**track.chota_kwargs(), "alphas": "hota",
                                           "caption_metrics": ()})
    return {"alphas": [round(float(a), 2) for a in result.alphas],
            **{f: [float(v) for v in result.per_alpha[f]] for f in CURVE_FIELDS}}


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A validated and scored submission, not stored (challenge-host adapters stop here)."""

    submission: Submission
    report: ValidationReport
    metrics: dict[str, float]
    per_video: list[dict[str, Any]]
    official: bool
    alpha_curve: dict[str, Any] | None
    # The scorer's sufficient statistics per video (rows of per_video) and alpha: stored so
    # that the page can bootstrap confidence intervals without scoring again.
    video_stats: dict[str, list[list[float]]] | None = None


def evaluate(submission: Submission, track: Track, *, limits: Limits = Limits(),
             with_alpha_curve: bool = False, progress: bool = False) -> Evaluation:
    """Validate a read submission against the track's GT and score it with its protocol.

    Example:
        >>> ev = evaluate(read_submission("pred.json"), track)     # doctest: +SKIP
        >>> sorted(ev.metrics)[:3]                                  # doctest: +SKIP
        ['AssA', 'AssPr', 'AssRe']
    """
    preds = submission.parse()
    gt = load_ground_truth(track.require_gt())
    report, det = load_valid_predictions(preds, gt, iou=track.iou, source=submission.source,
                                         limits=limits, score_threshold=track.score_threshold)
    result = benchmark.chota(gt, det, **track.chota_kwargs(), progress=progress)
    per_video = [{k: _to_builtin(v) for k, v in row.items()}
                 for row in result.per_video.to_dict(orient="records")]
    curve = alpha_curve(gt, det, track) if with_alpha_curve else None
    return Evaluation(submission=submission, report=report,
                      metrics={k: float(v) for k, v in result.to_dict().items()},
                      per_video=per_video, official=bool(result.official), alpha_curve=curve,
                      video_stats={k: np.asarray(v, dtype=float).tolist() for k, v in result.video_stats.items()})


def storable_name(name: str) -> str:
    """The upload's name as the store can hold it (it is only shown, never refused): bytes
    that are not UTF-8 written as escapes, and a name over the column size shortened from
    the front, the file name being its most telling part.

    Example:
        >>> print(storable_name("r" + chr(0xDCFF) + ".json"))
        r\\udcff.json
        >>> storable_name("d/" * 200 + "pred.json")[-15:], len(storable_name("d/" * 200))
        ('d/d/d/pred.json', 300)
    """
    name = name.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if len(name) > MAX_SUBMISSION_NAME_CHARS:
        name = "..." + name[len(name) - MAX_SUBMISSION_NAME_CHARS + 3:]
    return name


def score_submission(
    path: str | os.PathLike[str],
    track: Track,
    *,
    store: Store,
    team: str,
    method: str,
    description: str = "",
    limits: Limits = Limits(),
    with_alpha_curve: bool = True,
    progress: bool = False,
) -> Scored:
    """Validate and score a submission file on a track and store the result.

    Raises ``InputError`` (nothing stored) when the file is unsafe or invalid, or when the
    team, method or description cannot be stored (checked before reading the file).
    """
    team, method = team.strip(), method.strip()
    for field, value in (("team", team), ("method", method)):
        if not value:
            raise InputError(f"a {field} name is required", field=field)
    check_entry_text(team=team, method=method, description=description)
    submission = read_submission(path, limits=limits)
    existing = store.find(track.name, submission.checksum)
    if existing is not None:
        return Scored(entry=existing, created=False, report=None,
                      warnings=[f"this file was already scored on {track.name} as entry "
                                f"{existing.id} ({existing.team} / {existing.method}); "
                                "no row added"])
    ev = evaluate(submission, track, limits=limits, with_alpha_curve=with_alpha_curve,
                  progress=progress)
    entry, created = store.add_scored(
        track=track.name, team=team, method=method, description=description,
        checksum=submission.checksum, protocol={**track.protocol_record(), "official": ev.official},
        metrics=ev.metrics, per_video=ev.per_video, video_stats=ev.video_stats,
        submission_name=storable_name(submission.source),
        package_version=benchmark.__version__, alpha_curve=ev.alpha_curve)
    return Scored(entry=entry, created=created, report=ev.report,
                  warnings=ev.report.warnings(track.score_threshold))
