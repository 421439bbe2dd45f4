"""``benchmark datacard``: dataset statistics and data-card checks.

Example:
    $ benchmark datacard stats gt.json --json stats.json
    $ benchmark datacard check data_cards/sample.md benchmark/sample_data/gt.json
    $ benchmark datacard lint data_cards/*.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _stats(args: argparse.Namespace) -> int:
    from rich.table import Table

    from benchmark.atomic import write_json_atomic
    from benchmark.commands.console import table_console
    from benchmark.datacard import STAT_KEYS, dataset_statistics

    stats = dataset_statistics(args.gt)
    table = Table(title=f"Statistics of {args.gt}")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for key in STAT_KEYS:
        table.add_row(key, f"{stats[key]:g}" if isinstance(stats[key], float) else str(stats[key]))
    # Piped to a file or a log, a plain Console would cut long category names at 80 columns.
    console = table_console()
    console.print(table)
    categories = Table(title=f"Tracks per category (top {args.top})")
    categories.add_column("category")
    categories.add_column("tracks", justify="right")
    for name, count in list(stats["category_tracks"].items())[: args.top]:
        categories.add_row(name, str(count))
    console.print(categories)
    if args.json:
        write_json_atomic(stats, args.json)
        print(f"wrote {args.json}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from benchmark.datacard import (
        compare_statistics, dataset_statistics, parse_card, validate_card,
    )

    card = parse_card(args.card)
    problems = validate_card(card)
    mismatches, not_checked = compare_statistics(card, dataset_statistics(args.gt),
                                                 split=args.split)
    for problem in problems:
        print(f"{args.card}: {problem}", file=sys.stderr)
    for mismatch in mismatches:
        print(f"{args.card}: statistics mismatch: {mismatch}", file=sys.stderr)
    if not_checked:
        print(f"not checked (not published or not computable): {', '.join(not_checked)}")
    if problems or mismatches:
        print(f"{args.card}: {len(problems)} structure problem(s), {len(mismatches)} "
              "statistics mismatch(es)", file=sys.stderr)
        return 1
    print(f"{args.card}: OK, statistics match {args.gt}")
    return 0


def _lint(args: argparse.Namespace) -> int:
    from benchmark.datacard import parse_card, validate_card

    failed = 0
    for path in args.cards:
        problems = validate_card(parse_card(path))
        for problem in problems:
            print(f"{path}: {problem}", file=sys.stderr)
        failed += bool(problems)
        if not problems:
            print(f"{path}: OK")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``benchmark datacard {stats,check,lint}``."""
    parser = subparsers.add_parser("datacard", help="dataset statistics and data-card checks")
    commands = parser.add_subparsers(dest="datacard_command", metavar="SUBCOMMAND")
    commands.required = True

    stats = commands.add_parser("stats", help="statistics of a ground-truth file")
    stats.add_argument("gt", type=Path, help="ground truth (COCO-video or per-track JSON)")
    stats.add_argument("--json", type=Path, help="also write the statistics as JSON here")
    stats.add_argument("--top", type=int, default=20, help="categories listed in the console")
    stats.set_defaults(func=_stats)

    check = commands.add_parser(
        "check", help="compare a card's statistics block with the data (exit 1 on mismatch)")
    check.add_argument("card", type=Path, help="data card (Markdown with YAML front matter)")
    check.add_argument("gt", type=Path, help="the ground truth the card describes")
    check.add_argument("--split", help="split of the card's statistics block to compare")
    check.set_defaults(func=_check)

    lint = commands.add_parser("lint", help="check that cards have every field and section")
    lint.add_argument("cards", type=Path, nargs="+")
    lint.set_defaults(func=_lint)
