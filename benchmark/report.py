"""Outputs of a result: console table, JSON, per-video CSV and the alpha-curve plot.

Everything is generated from the field declarations in :mod:`benchmark.fields`, so a new
field appears in every output at once.

Example:
    >>> from benchmark import chota                                   # doctest: +SKIP
    >>> result = chota("gt.json", "pred.json", caption_metrics=("cider",))  # doctest: +SKIP
    >>> print_table(result); write_json(result, "scores.json")        # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from benchmark import __version__
from benchmark.atomic import atomic_save_figure, write_text_output
from benchmark.scoring import PROTOCOLS, ChotaResult


def result_json(result: ChotaResult) -> dict[str, Any]:
    """The JSON document written by ``--json``: settings, scores, per-alpha arrays, warnings."""
    return {
        "package_version": __version__,
        "settings": result.settings(),
        "scores": result.to_dict(),
        "per_alpha": {f.name: [float(v) for v in result.per_alpha[f.name]] for f in result.fields},
        "warnings": result.warnings,
    }


def write_json(result: ChotaResult, path: str | os.PathLike) -> None:
    """Write :func:`result_json` to ``path`` atomically (``-``: standard output)."""
    write_text_output(path, json.dumps(result_json(result), ensure_ascii=False, indent=2))


def write_csv(result: ChotaResult, path: str | os.PathLike) -> None:
    """Write the per-video table (one row per video, fields averaged over alphas) atomically
    (``-``: standard output)."""
    write_text_output(path, result.per_video.to_csv(index=False, float_format="%.6g"))


def format_value(kind: str, value: float) -> str:
    return f"{value:.0f}" if kind == "count" else f"{value:.4f}"


def print_table(result: ChotaResult, *, title: str | None = None, console=None) -> None:
    """Print the scores (and the settings that produced them) as a console table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    alphas = result.alphas
    alpha_text = "0.5" if len(alphas) == 1 and alphas[0] == 0.5 else (
        f"{len(alphas)} alphas {alphas[0]:.2f}..{alphas[-1]:.2f}" if len(alphas) > 1
        else f"{alphas[0]:g}")
    table = Table(title=title or f"CHOTA ({result.iou} IoU, alpha {alpha_text})")
    table.add_column("field")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    values = result.to_dict()
    undefined = result.undefined_fields()
    for f in result.fields:
        text, meaning = format_value(f.kind, values[f.name]), f.description
        if f.name in undefined:
            # The reference's value stays (as in the JSON), flagged: it measures nothing.
            n = undefined[f.name]
            at = "" if n == len(alphas) else f" at {n} of {len(alphas)} alphas"
            text += " *"
            meaning = f"* UNDEFINED{at}: no true positive (reference's value); {meaning}"
        table.add_row(f.name, text, meaning)
    console.print(table)
    notes = [f"protocol: {result.protocol} ({PROTOCOLS[result.protocol]})",
             f"predictions kept when score > {result.score_threshold:g}"]
    if result.caption_metrics and not result.official:
        notes.append(f"CapA/CHOTA from {', '.join(result.caption_metrics)} only: NOT the "
                     "official CapA (CIDEr + METEOR + SPICE); not comparable with papers")
    for note in notes + result.warnings:
        console.print(f"[dim]- {note}[/dim]")


def alpha_figure(result: ChotaResult):
    """The figure of :func:`plot_alpha_curves` (the caller closes it): one curve per field
    against alpha when there are several alphas; at a single alpha (a curve would be a
    column of dots) one bar per field, labelled with its value.

    Example:
        >>> fig = alpha_figure(result); [p.get_height() for p in fig.axes[0].patches]  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ["HOTA", "DetA", "AssA", "LocA"]
    if result.caption_metrics:
        names += ["CHOTA", "CapA"] if result.official else ["CHOTA"]
    top = max(1.0, *(float(np.max(result.per_alpha[n])) for n in names)) * 1.02
    fig, ax = plt.subplots(figsize=(6, 4.2))
    if len(result.alphas) == 1:
        values = [float(result.per_alpha[name][0]) for name in names]
        bars = ax.bar(names, values, color=[f"C{i}" for i in range(len(names))])
        ax.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=8)
        ax.set_ylim(0, top * 1.06)  # room for the labels above the bars
        ax.set_xlabel("field")
        ax.grid(alpha=0.3, axis="y")
        ax.set_title(f"CHOTA fields at alpha {result.alphas[0]:g} ({result.iou} IoU)")
    else:
        marker = "o" if len(result.alphas) < 4 else None
        for name in names:
            values = result.per_alpha[name]
            ax.plot(result.alphas, values, marker=marker,
                    label=f"{name} ({np.mean(values):.3f})")
        ax.set_xlabel("alpha (IoU threshold)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, top)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
        ax.set_title(f"CHOTA fields vs alpha ({result.iou} IoU)")
    ax.set_ylabel("score")
    fig.tight_layout()
    return fig


def plot_alpha_curves(result: ChotaResult, path: str | os.PathLike) -> None:
    """TrackEval-style plot of HOTA, DetA, AssA, LocA (and CapA, CHOTA) against alpha; bars
    at a single alpha (see :func:`alpha_figure`)."""
    import matplotlib.pyplot as plt

    fig = alpha_figure(result)
    try:
        atomic_save_figure(path, fig, dpi=120)
    finally:
        plt.close(fig)
