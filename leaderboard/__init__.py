"""Leaderboard for Dense Video Object Captioning: validate, score, store and rank submissions.

A participant's file goes through :func:`leaderboard.submission.read_submission` (safe
decompression), :func:`leaderboard.validation.validate_predictions` (schema and ids against
the track's ground truth), :func:`leaderboard.service.score_submission` (``benchmark.chota``
under the track's protocol) and lands in a :class:`leaderboard.store.Store`;
:func:`leaderboard.render.render_site` writes the static pages.

Example:
    $ leaderboard score results.json --track sample-box --team "My lab" --method "Baseline"
    $ leaderboard render --out site/
"""

from __future__ import annotations
