"""``benchmark bias``: do automatic (VLM) captions rank systems like manual ones?

Example:
    $ benchmark bias --automatic lvviscap_subset_auto.json --manual lvviscap_subset_manual.json \\
          --pred maskcaptioner=mc.json --pred mc_lviscap=mc_lvis.json --out bias_report/
"""

from __future__ import annotations

import argparse

from benchmark.bias import compare_ground_truths, write_report
from benchmark.cli import parse_pairs
from benchmark.commands.console import show_progress
from benchmark.commands.score import add_scoring_options, scoring_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``bias`` sub-command."""
    p = subparsers.add_parser(
        "bias", help="compare system rankings under automatic vs manual captions (Table 6 style)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--automatic", required=True, help="ground truth with automatic (synthetic) captions")
    p.add_argument("--manual", required=True, help="the same videos with manual captions")
    p.add_argument("--pred", action="append", required=True, metavar="NAME=PATH",
                   help="a system's predictions (repeat, at least twice)")
    p.add_argument("--out", required=True, help="folder for bias.md, bias.json, bias.csv and plots")
    add_scoring_options(p)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of videos")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``benchmark bias``."""
    options = scoring_options(args)
    result = compare_ground_truths(
        args.automatic, args.manual, parse_pairs(args.pred, form="NAME=PATH", field="--pred"),
        caption_metrics=options.pop("caption_metrics"), iou=options.pop("iou"),
        alphas=options.pop("alphas"), score_threshold=options.pop("score_threshold"),
        num_bootstrap=args.bootstrap, confidence=args.confidence, seed=args.seed,
        progress=show_progress(args.no_progress), scorer_options=options,
    )
    paths = write_report(result, args.out)
    table = result.changes[result.changes["field"].isin(("CapA", "CHOTA"))]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for name in ("CapA", "CHOTA"):
        print(f"Kendall tau ({name}): {result.rank_agreement[name]['kendall_tau']:.3f}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"report: {paths['markdown']}")
    return 0
