"""Published results of the papers in our specs, as rows for :meth:`Store.seed_reported`.

The numbers live in ``reported.yaml`` exactly as printed (percent), with the paper and the
table they come from; this module maps them onto the registry's tracks and converts them
to the scorer's units (fractions).

Example:
    >>> from leaderboard.tracks import load_tracks
    >>> rows = reported_rows(load_tracks())
    >>> [r["metrics"]["CHOTA"] for r in rows if r["method"] == "OW-VISCapTor"]
    [0.53]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import InputError
from leaderboard.tracks import Track

DEFAULT_REPORTED = Path(__file__).with_name("reported.yaml")
_IOU_UNSTATED = "the paper does not state whether box or mask IoU was used"


def reported_rows(tracks: dict[str, Track], path: str | os.PathLike[str] | None = None
                  ) -> list[dict[str, Any]]:
    """Rows for every track of the registry that a published table applies to."""
    source_file = Path(path or DEFAULT_REPORTED)
    try:
        tables = yaml.safe_load(source_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read published results: {exc}", source=str(source_file)) from exc
    rows: list[dict[str, Any]] = []
    for t_index, table in enumerate(tables):
        columns = table["columns"]
        targets = [t for t in tracks.values()
                   if t.benchmark == table["benchmark"] and t.split == table.get("split")
                   and (table.get("iou") is None or t.iou == table["iou"])]
        notes = [n for n in (table.get("note"), None if table.get("iou") else _IOU_UNSTATED) if n]
        for r_index, values in enumerate(table["rows"]):
            method, team, setting, *numbers = values
            if len(numbers) != len(columns):
                raise InputError(f"has {len(numbers)} values for {len(columns)} columns",
                                 source=str(source_file), record=f"{t_index}.{r_index}")
            metrics = {c: float(v) / 100.0 for c, v in zip(columns, numbers)}
            for track in targets:
                rows.append({"track": track.name, "method": method, "team": team,
                             "setting": setting, "metrics": metrics, "source": table["source"],
                             "note": "; ".join(notes) or None})
    return rows
