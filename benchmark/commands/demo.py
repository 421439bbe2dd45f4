"""``benchmark demo``: score the bundled sample submissions and write a report.

Scores the three bundled submissions (good, fair, poor) of the synthetic sample with CHOTA,
prints the table of the good one and a comparison, and writes per-submission JSON, per-video
CSV, alpha-curve plots and a Markdown report. Uses the official caption metrics when the SPICE
jars are installed (``benchmark fetch-spice``), else CIDEr + METEOR and says so.

Example:
    $ benchmark demo --out out/demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.fields import OFFICIAL_CAPTION_METRICS


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="score the bundled sample submissions",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="report folder")
    parser.add_argument("--iou", choices=("box", "mask"), default="box")
    parser.add_argument("--caption-metrics", nargs="*", default=None, metavar="METRIC",
                        help="default: cider meteor spice if SPICE is installed, else cider meteor")
    parser.set_defaults(func=run)


def default_caption_metrics() -> tuple[tuple[str, ...], str | None]:
    """The official metrics when SPICE can run here, else CIDEr + METEOR and the reason."""
    from benchmark.captions.spice import find_corenlp
    from benchmark.errors import ToolMissingError

    try:
        find_corenlp()
    except ToolMissingError:
        return ("cider", "meteor"), ("SPICE's CoreNLP jars are not installed (`benchmark "
                                     "fetch-spice`), so CapA here is CIDEr + METEOR only")
    return OFFICIAL_CAPTION_METRICS, None


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from benchmark import report
    from benchmark.commands.console import show_progress, table_console
    from benchmark.sample_data import sample_paths
    from benchmark.scoring import Chota

    console = table_console()
    metrics, note = ((tuple(args.caption_metrics), None) if args.caption_metrics is not None
                     else default_caption_metrics())
    paths = sample_paths()
    results = {}
    for quality, submission in paths.submissions.items():
        # One ground-truth load per submission keeps each result independent of the others.
        metric = Chota(paths.gt, iou=args.iou, caption_metrics=metrics,
                       progress=show_progress())
        metric.update(submission)
        result = metric.compute()
        results[quality] = result
        folder = args.out / quality
        report.write_json(result, folder / "scores.json")
        report.write_csv(result, folder / "per_video.csv")
        report.plot_alpha_curves(result, folder / "alphas.png")
    report.print_table(results["good"], title=f"CHOTA of the bundled 'good' submission "
                                              f"({args.iou} IoU)", console=console)
    headline = {"CHOTA", "CapA", "HOTA", "DetA", "AssA", "LocA"}
    names = [f.name for f in results["good"].fields
             if f.name in headline or f.name.startswith("CapA-")]
    comparison = Table(title="All bundled submissions")
    comparison.add_column("submission")
    for name in names:
        comparison.add_column(name, justify="right")
    for quality, result in results.items():
        values = result.to_dict()
        comparison.add_row(quality, *(f"{values[n]:.3f}" for n in names))
    console.print(comparison)
    if note:
        console.print(f"[yellow]note:[/yellow] {note}")
    lines = [f"# CHOTA on the bundled sample ({args.iou} IoU, alpha 0.5)", "",
             f"Ground truth: `{paths.gt}`. Caption metrics: {', '.join(metrics)}."
             + (f" Note: {note}." if note else ""), "",
             "| submission | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    for quality, result in results.items():
        values = result.to_dict()
        lines.append(f"| [{quality}]({quality}/scores.json) | "
                     + " | ".join(f"{values[n]:.3f}" for n in names) + " |")
    lines += ["", "Per submission: `scores.json` (all fields, settings, per-alpha values), "
              "`per_video.csv`, `alphas.png`."]
    (args.out / "report.md").write_text("\n".join(lines) + "\n")
    console.print(f"wrote {args.out / 'report.md'} and one folder per submission")
    return 0
