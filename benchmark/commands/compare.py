"""``benchmark compare``: is the difference between two systems significant?

Scores every system once on the ground truth, then compares each with the first (the
baseline) on every field: B - A, its paired bootstrap confidence interval over videos and a
paired permutation p-value (see :mod:`benchmark.compare`).

Example:
    $ benchmark compare --gt vidstg_val_gt.json --pred A=a.json --pred B=b.json --json cmp.json
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmark import __version__
from benchmark.cli import parse_pairs
from benchmark.commands.score import add_scoring_options, scoring_options


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("compare", help="paired bootstrap CIs and permutation p-values between systems",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, help="ground truth (.json / .json.gz)")
    p.add_argument("--pred", action="append", required=True, metavar="NAME=PATH",
                   help="a system's predictions (repeat; the first is the baseline)")
    add_scoring_options(p)
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of videos")
    p.add_argument("--permutations", type=int, default=1000, help="random permutations")
    p.add_argument("--confidence", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", dest="json_out", help="write settings and the table as JSON ('-': stdout)")
    p.add_argument("--csv", dest="csv_out", help="write the table as CSV ('-': stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table
    from tqdm import tqdm

    from benchmark.atomic import write_text_output
    from benchmark.commands.console import show_progress, table_console
    from benchmark.commands.score import check_outputs
    from benchmark.compare import compare_systems
    from benchmark.io import load_ground_truth
    from benchmark.scoring import chota

    systems = parse_pairs(args.pred, form="NAME=PATH", field="--pred")
    options = scoring_options(args)
    to_stdout = check_outputs({"--json": args.json_out, "--csv": args.csv_out})
    messages = sys.stderr if to_stdout else sys.stdout
    gt = load_ground_truth(args.gt, require_captions=bool(options["caption_metrics"]))
    results = {}
    for name, path in tqdm(systems.items(), desc="scoring", disable=not show_progress(args.quiet)):
        results[name] = chota(gt, path, **options)
        for warning in results[name].warnings:
            print(f"warning: {name}: {warning}", file=sys.stderr)
    comparison = compare_systems(results, num_bootstrap=args.bootstrap, num_permutations=args.permutations,
                                 confidence=args.confidence, seed=args.seed)
    s = comparison.settings
    out = Table(title=f"{' vs '.join(s['systems'])} on {s['videos']} videos: b - a, {s['confidence']:.0%} "
                      f"bootstrap interval ({s['num_bootstrap']} resamples), permutation p "
                      f"({s['num_permutations']})")
    for column in ("a", "b", "field", "value a", "value b", "b - a", "interval", "p", ""):
        out.add_column(column, justify="left" if column in ("a", "b", "field") else "right")
    for row in comparison.table.itertuples():
        out.add_row(row.system_a, row.system_b, row.field, f"{row.a:.4f}", f"{row.b:.4f}", f"{row.diff:+.4f}",
                    f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]", f"{row.p_perm:.4f}",
                    "significant" if row.significant else "not significant")
    table_console(stderr=to_stdout).print(out)
    if args.json_out:
        doc = {"package_version": __version__, "settings": {**s, **{k: v for k, v in options.items()
                                                                   if k in ("iou", "score_threshold", "protocol")},
                                                            "caption_metrics": list(options["caption_metrics"])},
               "comparisons": json.loads(comparison.table.to_json(orient="records"))}
        if write_text_output(args.json_out, json.dumps(doc, indent=2)) != "-":
            print(f"wrote {args.json_out}", file=messages)
    if args.csv_out:
        if write_text_output(args.csv_out, comparison.table.to_csv(index=False)) != "-":
            print(f"wrote {args.csv_out}", file=messages)
    return 0
