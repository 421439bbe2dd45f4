"""EvalAI adapter: the ``evaluate`` function an EvalAI challenge's evaluation script exposes.

In the challenge bundle's ``evaluation_script/__init__.py``::

    from leaderboard.evalai import evaluate

EvalAI calls it with the phase's annotation file and the participant's file. The phase
codename names the track whose protocol applies (``PHASE_TRACKS`` maps other codenames, or
pass ``track=`` in kwargs); the GT is the file EvalAI gives. Invalid files raise
``InputError``, whose one-line message EvalAI shows to the participant.

Example:
    >>> out = evaluate("gt.json", "results.zip", "vidstg-val-box")     # doctest: +SKIP
    >>> out["submission_result"]["CHOTA"]                              # doctest: +SKIP
    0.62
"""

from __future__ import annotations

from typing import Any

from leaderboard.service import evaluate as evaluate_submission
from leaderboard.submission import read_submission
from leaderboard.tracks import get_track, load_tracks

#: Metrics shown on the EvalAI leaderboard, in this order (fractions, as the scorer gives them).
SHOWN_METRICS: tuple[str, ...] = ("CHOTA", "CapA", "DetA", "AssA", "HOTA", "LocA",
                                  "CapA-cider", "CapA-meteor", "CapA-spice")
#: EvalAI phase codename -> track name, for phases not named after their track.
PHASE_TRACKS: dict[str, str] = {}


def evaluate(test_annotation_file: str, user_submission_file: str, phase_codename: str,
             **kwargs: Any) -> dict[str, Any]:
    """Score one submission for EvalAI; returns ``{"result": [{split: metrics}], ...}``."""
    name = kwargs.get("track") or PHASE_TRACKS.get(phase_codename, phase_codename)
    track = get_track(name, load_tracks(kwargs.get("tracks_file"))).with_gt(test_annotation_file)
    ev = evaluate_submission(read_submission(user_submission_file), track)
    split = kwargs.get("split_codename") or track.split or "test"
    shown = {m: ev.metrics[m] for m in SHOWN_METRICS if m in ev.metrics}
    return {"result": [{split: shown}], "submission_result": shown,
            "submission_metadata": {"checksum": ev.submission.checksum,
                                    "official": ev.official}}
