"""Published results as rows for :meth:`Store.seed_reported`.

The numbers live in :mod:`benchmark.published` exactly as printed (percent), with the paper and
the table they come from; the tables marked ``leaderboard: true`` are seeded here (a row that
repeats another source's row, ``same_as``, is left to that row). This module maps them onto
the registry's tracks, converts them to the scorer's units (fractions) and attaches the notes:
the table's ``leaderboard_note``, "IoU not stated" where the paper does not say, and the known
inconsistencies of the row (``benchmark published --check``).

Example:
    >>> from leaderboard.tracks import load_tracks
    >>> rows = reported_rows(load_tracks())
    >>> [r["metrics"]["CHOTA"] for r in rows if r["method"] == "OW-VISCaptor"]
    [0.53]
"""

from __future__ import annotations

from typing import Any

from benchmark.published import load_known_findings, load_papers, row_notes
from leaderboard.tracks import Track

_IOU_UNSTATED = "the paper does not state whether box or mask IoU was used"
# Leaderboard metric names for the printed column names that differ only in case ("CIDeR").
_METRICS = ("CHOTA", "CapA", "DetA", "AssA", "HOTA", "LocA", "CIDEr")


def reported_rows(tracks: dict[str, Track]) -> list[dict[str, Any]]:
    """Rows for every track of the registry that a published leaderboard table applies to."""
    notes_of = row_notes(load_known_findings())
    rows: list[dict[str, Any]] = []
    for paper in load_papers():
        for table in paper.tables:
            if not table.leaderboard:
                continue
            targets = [t for t in tracks.values()
                       if t.benchmark == table.dataset and t.split == table.split
                       and (table.iou is None or t.iou == table.iou)]
            table_notes = [n for n in (table.leaderboard_note, None if table.iou else _IOU_UNSTATED) if n]
            for row in table.rows:
                if row.same_as is not None:
                    continue
                metrics = {_metric_name(c): float(v) / 100.0 for c, v in row.values.items() if v is not None}
                note = "; ".join(table_notes + notes_of.get(row.id, [])) or None
                for track in targets:
                    rows.append({"track": track.name, "method": row.name, "team": row.team,
                                 "setting": row.setting, "metrics": metrics,
                                 "source": f"{row.id} ({table.source})", "note": note})
    return rows


def _metric_name(column: str) -> str:
    return next((m for m in _METRICS if m.lower() == column.lower()), column)
