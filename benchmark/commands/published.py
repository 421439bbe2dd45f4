"""``benchmark published``: the field's published results, as printed, and their check.

Example:
    $ benchmark published --dataset vidstg
    $ benchmark published --method MaskCaptioner --csv maskcaptioner.csv
    $ benchmark published --check
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmark import __version__


def register(subparsers: argparse._SubParsersAction) -> None:
    from benchmark.published import DATASETS

    parser = subparsers.add_parser(
        "published", help="list the papers' published results; --check their arithmetic",
        description="Every result table this package can score, as printed in the papers (and "
                    "the authors' release tables), with its source. --check recomputes CHOTA, "
                    "HOTA and CapA from their parts at the printed precision, compares rows "
                    "printed in two sources, and exits 1 on an inconsistency that "
                    "benchmark/published/known_findings.yaml does not record.")
    parser.add_argument("--dataset", choices=DATASETS, help="only this dataset's tables")
    parser.add_argument("--method", help="only rows whose method contains this (any case)")
    parser.add_argument("--check", action="store_true",
                        help="run the consistency check and print every finding")
    parser.add_argument("--json", dest="json_out", help="write the rows (or findings) as JSON ('-': stdout)")
    parser.add_argument("--csv", dest="csv_out",
                        help="write one line per row and metric as CSV ('-': stdout)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    from rich.table import Table

    from benchmark.atomic import write_text_output
    from benchmark.commands.console import table_console
    from benchmark.commands.score import check_outputs
    from benchmark.published import (as_records, check, compare_with_known, load_known_findings,
                                     load_papers, select_rows)

    to_stdout = check_outputs({"--json": args.json_out, "--csv": args.csv_out})
    messages = sys.stderr if to_stdout else sys.stdout
    console = table_console(stderr=to_stdout)
    papers = load_papers()
    if args.check:
        noted, new, stale = compare_with_known(check(papers), load_known_findings())
        out = Table(title=f"Published results: {len(noted)} finding(s), {len(new)} new, {len(stale)} stale")
        for column in ("check", "rows", "printed", "recomputed / other source", "status"):
            out.add_column(column)
        for f in noted:
            out.add_row(f.check, "\n".join(f.rows), f.printed, f.expected,
                        "NEW" if f.note is None else f"known: {f.note}")
        console.print(out)
        for check_name, rows in stale:
            console.print(f"[red]stale:[/red] known finding {check_name} {list(rows)} is no longer found")
        if args.json_out:
            doc = {"package_version": __version__,
                   "findings": [{"check": f.check, "rows": list(f.rows), "printed": f.printed,
                                 "expected": f.expected, "known": f.note is not None, "note": f.note}
                                for f in noted],
                   "stale": [{"check": c, "rows": list(r)} for c, r in stale]}
            if write_text_output(args.json_out, json.dumps(doc, ensure_ascii=False, indent=2)) != "-":
                print(f"wrote {args.json_out}", file=messages)
        if new or stale:
            print(f"error: {len(new)} new and {len(stale)} stale finding(s): record the papers' own "
                  "inconsistencies in benchmark/published/known_findings.yaml, with a note",
                  file=sys.stderr)
            return 1
        return 0

    rows = select_rows(papers, dataset=args.dataset, method=args.method)
    tables = {}
    for row in rows:
        tables.setdefault((row.paper, row.table), []).append(row)
    by_key = {(t.paper, t.table): t for p in papers for t in p.tables}
    for key, table_rows in tables.items():
        table = by_key[key]
        where = f"{table.dataset} {table.split or '(split not stated)'}, IoU {table.iou or 'not stated'}"
        out = Table(title=f"{table.paper}, {table.table}: {table.title}\n[dim]{where}; {table.units}; "
                          f"{table.source}[/dim]", title_justify="left")
        out.add_column("row", justify="right")
        out.add_column("method")
        out.add_column("setting")
        for column in table.columns:
            out.add_column(column, justify="right")
        for row in table_rows:
            marks = " *" if row.note or row.same_as else ""
            out.add_row(str(row.row), row.method + marks, row.setting,
                        *["-" if v is None else v.text for v in row.values.values()])
        console.print(out)
    if not rows:
        console.print("no published row matches")
    console.print(f"[dim]{len(rows)} rows in {len(tables)} tables; * = the row has a note or repeats "
                  "another source's row (see --json).[/dim]")
    if args.dataset is None and args.method is None:
        for paper in papers:
            for missing in paper.not_transcribed:
                console.print(f"[dim]not transcribed: {paper.paper}, {missing.get('table')}: "
                              f"{missing.get('reason')}[/dim]")
    if args.json_out:
        doc = {"package_version": __version__,
               "rows": [{"id": r.id, "paper": r.paper, "table": r.table, "row": r.row,
                         "method": r.method, "name": r.name, "team": r.team, "setting": r.setting,
                         "dataset": r.dataset, "split": r.split, "iou": r.iou,
                         "values": {c: None if v is None else v.text for c, v in r.values.items()},
                         "note": r.note, "same_as": r.same_as} for r in rows]}
        if write_text_output(args.json_out, json.dumps(doc, ensure_ascii=False, indent=2)) != "-":
            print(f"wrote {args.json_out}", file=messages)
    if args.csv_out:
        frame = pd.DataFrame(as_records(rows))
        if write_text_output(args.csv_out, frame.to_csv(index=False)) != "-":
            print(f"wrote {args.csv_out}", file=messages)
    return 0
