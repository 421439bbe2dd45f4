"""The static leaderboard site: one sortable page per track, CSV downloads and plots.

Layout of ``out``: ``index.html``; per track ``<track>.html`` and a folder ``<track>/`` with
``leaderboard.csv``, ``entry-<id>-videos.csv`` (per-video results of each scored entry) and
the plots ``scatter.png`` (DetA vs AssA with CHOTA contours), ``bars.png`` (per-metric bars)
and ``alpha.png`` (HOTA / DetA / AssA against alpha). Every file is written atomically
(temporary file + rename), so a reader never sees a half-written page.

Example:
    >>> render_site(Store("sqlite:///lb.db"), "site", tracks=load_tracks())   # doctest: +SKIP
    [PosixPath('site/index.html'), ...]
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
from pathlib import Path
from typing import Any, Callable, Iterable, ParamSpec, TypeVar

import jinja2
import numpy as np
import pandas as pd

import benchmark
from benchmark.atomic import atomic_write_bytes
from leaderboard.store import SCORED, Entry, Store
from leaderboard.tracks import Track

#: Columns of the table and the CSV, in order.
TABLE_METRICS: tuple[str, ...] = ("CHOTA", "CapA", "DetA", "AssA", "HOTA", "LocA",
                                  "CapA-cider", "CapA-meteor", "CapA-spice", "CIDEr")
BAR_METRICS: tuple[str, ...] = ("CHOTA", "CapA", "DetA", "AssA", "HOTA")
MAX_PLOTTED = 8

P = ParamSpec("P")
R = TypeVar("R")

TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("leaderboard", "templates"),
                          autoescape=jinja2.select_autoescape(["html"]))


def _percent(value: float | None, reported: bool) -> str:
    if value is None:
        return ""
    # Reported numbers are shown as printed (one decimal); ours with two.
    return f"{100 * value:.1f}" if reported else f"{100 * value:.2f}"


def _setting(entry: Entry) -> str:
    return entry.description if entry.is_reported else ""


def _date(entry: Entry) -> str:
    return "" if entry.is_reported else entry.created_at.strftime("%Y-%m-%d %H:%M")


def leaderboard_frame(ranking: Iterable[tuple[int | None, Entry]]) -> pd.DataFrame:
    """The ranking as a table (fractions, not percent), as written to ``leaderboard.csv``
    (there through :func:`csv_safe`).

    Example:
        >>> leaderboard_frame(store.ranking("sample-box")).columns[:4].tolist()  # doctest: +SKIP
        ['rank', 'kind', 'team', 'method']
    """
    # Columns that no entry of this track has (e.g. SPICE off, or BenSMOT's CIDEr) are left out.
    metrics = [m for m in TABLE_METRICS if any(e.metric(m) is not None for _, e in ranking)]
    rows = []
    for rank, entry in ranking:
        rows.append({"rank": rank, "kind": entry.kind, "team": entry.team, "method": entry.method,
                     "setting": _setting(entry),
                     **{m: entry.metric(m) for m in metrics},
                     "submitted": _date(entry), "checksum": entry.checksum or "",
                     "package_version": entry.package_version or "", "source": entry.source or ""})
    return pd.DataFrame(rows, columns=["rank", "kind", "team", "method", "setting",
                                       *TABLE_METRICS, "submitted", "checksum",
                                       "package_version", "source"])


#: First characters that make a spreadsheet evaluate a cell as a formula ("CSV injection").
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells cannot run as spreadsheet formulas: a cell
    starting with one of :data:`FORMULA_PREFIXES` gets a leading single quote. For CSV
    downloads only; the page and the store keep the text as submitted.

    Example:
        >>> safe = csv_safe(pd.DataFrame({"team": ["=HYPERLINK(1)", "A-team"], "x": [-1.0, 2.0]}))
        >>> safe["team"].tolist(), safe["x"].tolist()
        (["'=HYPERLINK(1)", 'A-team'], [-1.0, 2.0])
    """
    def cell(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
            return "'" + value
        return value

    return frame.apply(lambda column: column if pd.api.types.is_numeric_dtype(column)
                       else column.map(cell))


def _pyplot() -> Any:
    # Imported on first plot: matplotlib is slow to import and the CLI often needs no plot.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_text(plot: Callable[P, R]) -> Callable[P, R]:
    """Draw every text of ``plot``'s figure literally: labels carry participants' team and
    method names, where ``$...$`` would otherwise be parsed as mathtext (and a malformed
    formula such as ``$\\frac{1}{$`` would fail the whole site) or sent to TeX."""
    @functools.wraps(plot)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        # Read when each Text is created, so the figure is built and saved inside the context.
        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return plot(*args, **kwargs)
    return wrapper


def _figure_png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _label(entry: Entry) -> str:
    text = f"{entry.method} ({entry.team})"
    return text if len(text) <= 40 else text[:37] + "..."


#: Where a point's number may go, in points from the point, tried in order until it overlaps
#: no number placed before (points of several entries often coincide: same paper, same DetA).
_NUMBER_OFFSETS: tuple[tuple[int, int], ...] = ((3, 3),) + tuple(
    (3 + dx * 9 * ring, 3 + dy * 9 * ring) for ring in range(1, 8)
    for dx, dy in ((0, -1), (-1, 0), (0, 1), (1, 0), (1, -1), (-1, -1), (-1, 1), (1, 1)))


def _place_numbers(fig: Any, ax: Any, points: list[tuple[float, float]]) -> list[Any]:
    """Annotate each point with its 1-based number, each placed where it overlaps no number
    before it; returns the annotations. Full labels go to the key below the plot, so a
    cluster of entries shows a few short numbers instead of stacked, unreadable names."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    placed: list[Any] = []
    # The markers are obstacles too: a number drawn under another entry's marker is hidden.
    radius = 4 * fig.dpi / 72
    boxes: list[Any] = [Bbox.from_extents(px - radius, py - radius, px + radius, py + radius)
                        for px, py in ax.transData.transform(points)]
    for number, (x, y) in enumerate(points, start=1):
        for offset in _NUMBER_OFFSETS:
            note = ax.annotate(str(number), (x, y), fontsize=7, xytext=offset,
                               textcoords="offset points")
            box = note.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in boxes):
                break
            note.remove()
        else:  # every place taken (hundreds of coinciding points): the last try stays
            note = ax.annotate(str(number), (x, y), fontsize=7, xytext=offset,
                               textcoords="offset points")
            box = note.get_window_extent(renderer)
        placed.append(note)
        boxes.append(box)
    return placed


@_plain_text
def plot_scatter(entries: list[Entry]) -> bytes | None:
    """DetA vs AssA of every entry with both, over contours of CHOTA.

    CHOTA needs CapA too, so the contours are drawn at the median CapA of the plotted entries
    (said in the title); without any CapA they are HOTA contours. Points carry numbers, and
    a key below the plot (one row per entry, the figure growing with it) names them: names
    written beside the points overlapped wherever papers report nearby numbers.

    Example:
        >>> plot_scatter(store.entries("sample-box"))[:4]        # doctest: +SKIP
        b'\x89PNG'
    """
    points = [e for e in entries if e.metric("DetA") is not None and e.metric("AssA") is not None]
    if not points:
        return None
    plt = _pyplot()
    caps = [e.metric("CapA") for e in points if e.metric("CapA") is not None]
    grid = np.linspace(0.001, 1, 200)
    det, ass = np.meshgrid(grid, grid)
    fig, ax = plt.subplots(figsize=(6, 5))
    if caps:
        cap = float(np.median(caps))
        surface, title = np.cbrt(det * ass * cap), f"CHOTA contours at CapA = {100 * cap:.1f}"
    else:
        surface, title = np.sqrt(det * ass), "HOTA contours (no CapA)"
    # CapA holds CIDEr on its x10 scale (reference protocol), so CHOTA may pass 100.
    contours = ax.contour(100 * det, 100 * ass, 100 * surface,
                          levels=np.arange(10, 100 * surface.max(), 10),
                          colors="#bbbbbb", linewidths=0.8)
    ax.clabel(contours, fmt="%d", fontsize=8)
    key = []
    for number, entry in enumerate(points, start=1):
        marker, color = ("^", "#b45309") if entry.is_reported else ("o", "#1d4ed8")
        x, y = 100 * entry.metrics["DetA"], 100 * entry.metrics["AssA"]
        key.append(ax.scatter([x], [y], marker=marker, color=color, zorder=3,
                              label=f"{number}  {_label(entry)}"))
    ax.set(xlabel="DetA (%)", ylabel="AssA (%)", xlim=(0, 100), ylim=(0, 100), title=title)
    kinds = []
    if any(not e.is_reported for e in points):
        kinds.append(ax.scatter([], [], marker="o", color="#1d4ed8", label="scored"))
    if any(e.is_reported for e in points):
        kinds.append(ax.scatter([], [], marker="^", color="#b45309", label="reported (paper)"))
    ax.add_artist(ax.legend(handles=kinds, loc="lower left", fontsize=8))
    # The key below the axes: savefig's tight bounding box grows the image to hold it.
    ax.legend(handles=key, loc="upper left", bbox_to_anchor=(0, -0.12), fontsize=7,
              frameon=False, borderaxespad=0)
    _place_numbers(fig, ax, [(100 * e.metrics["DetA"], 100 * e.metrics["AssA"]) for e in points])
    return _figure_png(fig)


@_plain_text
def plot_bars(ranking: list[tuple[int | None, Entry]]) -> bytes | None:
    """Grouped bars of the main metrics for the best entries (reported ones hatched)."""
    usable = [e for _, e in ranking if any(e.metric(m) is not None for m in BAR_METRICS)]
    # The best scored entries first, then a few published ones for reference.
    reported = [e for e in usable if e.is_reported][:3]
    shown = [e for e in usable if not e.is_reported][:MAX_PLOTTED - len(reported)] + reported
    if not shown:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(shown)
    x = np.arange(len(BAR_METRICS))
    top = 100.0
    for k, entry in enumerate(shown):
        values = [100 * (entry.metric(m) or 0.0) for m in BAR_METRICS]
        top = max(top, *values)
        ax.bar(x + k * width, values, width, label=_label(entry),
               hatch="//" if entry.is_reported else None)
    ax.set_xticks(x + 0.4 - width / 2, BAR_METRICS)
    ax.set(ylabel="%", ylim=(0, 1.05 * top),
           title="Metrics of the best entries (hatched: reported)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    return _figure_png(fig)


@_plain_text
def plot_alpha(entries: list[Entry]) -> bytes | None:
    """HOTA, DetA and AssA against the IoU threshold alpha for scored entries."""
    curves = [e for e in entries if e.alpha_curve][:MAX_PLOTTED]
    if not curves:
        return None
    plt = _pyplot()
    fields = ("HOTA", "DetA", "AssA")
    fig, axes = plt.subplots(1, len(fields), figsize=(11, 3.5), sharey=True)
    for ax, field in zip(axes, fields):
        for entry in curves:
            curve = entry.alpha_curve or {}
            ax.plot(curve["alphas"], [100 * v for v in curve[field]], marker=".",
                    label=_label(entry))
        ax.set(title=field, xlabel="alpha (IoU threshold)", ylim=(0, 100))
    axes[0].set_ylabel("%")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    return _figure_png(fig)


BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


def significance(store: Store, ranking: list, metric: str) -> dict[int, dict[str, Any]]:
    """Per scored entry (by id) with stored per-video statistics: the bootstrap confidence
    interval of ``metric`` over videos, and whether its paired difference from the scored
    entry ranked just above it is significant (the interval of the difference excludes 0).
    Every entry of a track is resampled with the same video weights (a paired bootstrap).

    Example:
        >>> significance(store, store.ranking("sample-box"), "CHOTA")[3]   # doctest: +SKIP
        {'low': 0.55, 'high': 0.61, 'above_significant': False}
    """
    from benchmark.bias import bootstrap_weights
    from benchmark.scoring import resample_fields

    samples: dict[int, np.ndarray] = {}
    weights, order = None, None
    out: dict[int, dict[str, Any]] = {}
    previous = None
    for rank, entry in ranking:
        if rank is None:
            continue
        stored = store.video_stats(entry.id)
        if stored is None:
            previous = None
            continue
        ids, stats = stored
        if weights is None:
            order = ids
            weights = bootstrap_weights(len(ids), BOOTSTRAP_RESAMPLES, seed=0)
        if ids != order:  # scored on other videos (another ground truth version): no pairing
            previous = None
            continue
        values = resample_fields(stats, entry.protocol.get("caption_metrics", []), weights).get(metric)
        if values is None:
            continue
        samples[entry.id] = values
        tail = (1 - CONFIDENCE) / 2
        low, high = np.quantile(values, [tail, 1 - tail])
        row: dict[str, Any] = {"low": float(low), "high": float(high), "above_significant": None}
        if previous is not None:
            d_low, d_high = np.quantile(samples[previous] - values, [tail, 1 - tail])
            row["above_significant"] = bool(d_low > 0 or d_high < 0)
        out[entry.id] = row
        previous = entry.id
    return out


def render_track(store: Store, track: Track, out: Path, *, plots: bool = True) -> list[Path]:
    """Write one track's page, CSVs and plots under ``out``; returns the files written."""
    ranking = store.ranking(track.name, metric=track.rank_by)
    folder = out / track.name
    written: list[Path] = []

    def write(path: Path, data: bytes) -> None:
        atomic_write_bytes(path, data)
        written.append(path)

    # Columns that no entry of this track has (e.g. SPICE off, or BenSMOT's CIDEr) are left out.
    metrics = [m for m in TABLE_METRICS if any(e.metric(m) is not None for _, e in ranking)]
    intervals = significance(store, ranking, track.rank_by)
    rows = []
    notes: list[str] = []  # shown under the table, numbered; a row links to its note
    for rank, entry in ranking:
        if entry.note and entry.note not in notes:
            notes.append(entry.note)
        csv_link = None
        if not entry.is_reported:
            videos = store.video_results(entry.id)
            name = f"entry-{entry.id}-videos.csv"
            write(folder / name, videos.to_csv(index=False).encode())
            csv_link = f"{track.name}/{name}"
        rows.append({
            "id": entry.id, "rank": rank, "kind": entry.kind, "team": entry.team,
            "method": entry.method, "setting": _setting(entry), "source": entry.source,
            "note": entry.note, "note_number": notes.index(entry.note) + 1 if entry.note else None,
            "ci": (f"[{100 * intervals[entry.id]['low']:.2f}, {100 * intervals[entry.id]['high']:.2f}]"
                   if entry.id in intervals else ""),
            "not_significant": intervals.get(entry.id, {}).get("above_significant") is False,
            "date": _date(entry), "csv": csv_link,
            "cells": [{"raw": "" if entry.metric(m) is None else repr(entry.metric(m)),
                       "text": _percent(entry.metric(m), entry.is_reported)}
                      for m in metrics],
        })
    # CRLF rows (RFC 4180): the csv writer then also quotes a text cell holding a lone CR,
    # which would otherwise split its row in two.
    write(folder / "leaderboard.csv", csv_safe(leaderboard_frame(ranking))
          .to_csv(index=False, lineterminator="\r\n").encode())
    images = []
    if plots:
        entries = [e for _, e in ranking]
        for name, alt, png in (
                ("scatter.png", "DetA vs AssA with CHOTA contours", plot_scatter(entries)),
                ("bars.png", "per-metric bars", plot_bars(ranking)),
                ("alpha.png", "HOTA, DetA and AssA against alpha", plot_alpha(entries))):
            if png is not None:
                write(folder / name, png)
                images.append({"src": f"{track.name}/{name}", "alt": alt,
                               "wide": name == "alpha.png"})
    html = TEMPLATES.get_template("track.html").render(track=track, rows=rows, metrics=metrics,
                                                       plots=images, notes=notes)
    write(out / f"{track.name}.html", html.encode())
    return written


def render_site(store: Store, out: str | os.PathLike[str], *, tracks: dict[str, Track],
                plots: bool = True) -> list[Path]:
    """Write the whole site (index and every track of the registry); returns the files."""
    out = Path(out)
    written: list[Path] = []
    summary = []
    for track in tracks.values():
        written += render_track(store, track, out, plots=plots)
        ranking = store.ranking(track.name, metric=track.rank_by)
        best = next((e.metric(track.rank_by) for r, e in ranking if r == 1), None)
        summary.append({"name": track.name, "title": track.title, "iou": track.iou,
                        "n_scored": sum(r is not None for r, _ in ranking),
                        "n_reported": sum(r is None for r, _ in ranking),
                        "best": _percent(best, False)})
    html = TEMPLATES.get_template("index.html").render(
        tracks=summary, version=benchmark.__version__,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    atomic_write_bytes(out / "index.html", html.encode())
    return [out / "index.html", *written]


def latest_track(store: Store, tracks: dict[str, Track]) -> str:
    """The registry track of the most recently stored submission (by submission time, then
    by storing order); the first track when the store holds no submission on any of them.

    It is the track ``leaderboard render --screenshot`` shows by default: the one a user
    just scored, rather than the first page, which often holds only the papers' rows.

    Example:
        >>> latest_track(Store("sqlite:///:memory:"), load_tracks())     # doctest: +SKIP
        'vidstg-val-box'
    """
    latest: tuple[dt.datetime, int, str] | None = None
    for name in tracks:
        for entry in store.entries(name, kind=SCORED):
            # SQLite gives back naive datetimes (stored as UTC): compare them as UTC.
            when = entry.created_at if entry.created_at.tzinfo else entry.created_at.replace(
                tzinfo=dt.timezone.utc)
            if latest is None or (when, entry.id) > latest[:2]:
                latest = (when, entry.id, name)
    return latest[2] if latest is not None else next(iter(tracks))
