"""``benchmark analyze``: what happened to every object and track, and what costs CHOTA most.

Writes ``analysis.html`` (worst videos and captions first, plots), ``analysis.json`` and the
tables as CSV (``per_object``, ``per_track``, ``pairs``, ``per_video``) to ``--out``; see
:mod:`benchmark.analyze`.

Example:
    $ benchmark analyze --gt vidstg_val_gt.json --pred pred.json --out analysis/
"""

from __future__ import annotations

import argparse

from benchmark.commands.score import add_scoring_options, scoring_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("analyze", help="error analysis: objects, tracks, captions, CHOTA what-ifs",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, help="ground truth (.json / .json.gz)")
    p.add_argument("--pred", required=True, help="predictions (.json / .json.gz)")
    p.add_argument("--out", required=True, help="folder for analysis.html, analysis.json and the CSVs")
    p.add_argument("--top", type=int, default=20, help="rows per table in the HTML page")
    add_scoring_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from benchmark.analyze import analyze, write_report
    from benchmark.commands.console import table_console
    from benchmark.errors import InputError

    options = scoring_options(args)
    alphas = options.pop("alphas")
    if isinstance(alphas, str) or len(alphas) != 1:
        raise InputError("analyze explains one alpha at a time: give --alphas with one value (default 0.5)",
                         field="--alphas")
    analysis = analyze(args.gt, args.pred, alpha=float(alphas[0]), **options)
    files = write_report(analysis, args.out, top=args.top)
    out = Table(title=f"Error analysis at alpha {analysis.alpha:g}")
    out.add_column("what")
    out.add_column("value", justify="right")
    for key, value in analysis.overall.items():
        out.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    table_console().print(out)
    for warning in analysis.result.warnings:
        print(f"warning: {warning}")
    print(f"report: {files['analysis.html']}")
    return 0
