"""``benchmark score``: score a prediction file with CHOTA and write the table, JSON, CSV, plot.

Example:
    $ benchmark score --gt gt.json --pred pred.json --iou mask --alphas hota \\
        --json scores.json --csv per_video.csv --plot alphas.png
"""

from __future__ import annotations

import argparse

from benchmark.fields import OFFICIAL_CAPTION_METRICS


def parse_alphas(values) -> str | list[float]:
    """``--alphas`` as given (``0.5 0.75``, ``0.5,0.75``, ``hota``) -> ``"hota"`` or the
    numbers; raises ``ValueError`` with a one-line reason.

    Example:
        >>> parse_alphas(["0.5,0.75", "0.9"]), parse_alphas(["HOTA"])
        ([0.5, 0.75, 0.9], 'hota')
        >>> parse_alphas(["foo"])
        Traceback (most recent call last):
        ...
        ValueError: 'foo' is not a number in (0, 1] nor 'hota'
    """
    items = [item.strip() if isinstance(item, str) else item
             for value in values
             for item in (value.split(",") if isinstance(value, str) else [value])]
    items = [item for item in items if item != ""]
    if not items:
        raise ValueError("expected 'hota' or at least one number in (0, 1]")
    if any(isinstance(item, str) and item.lower() == "hota" for item in items):
        if len(items) > 1:
            raise ValueError("'hota' stands alone (it means TrackEval's 19 alphas)")
        return "hota"
    numbers = []
    for item in items:
        try:
            number = float(item)
        except (TypeError, ValueError):
            number = float("nan")
        if not 0 < number <= 1:  # also refuses NaN
            raise ValueError(f"{item!r} is not a number in (0, 1] nor 'hota'")
        numbers.append(number)
    return numbers


class _AlphasAction(argparse.Action):
    """Parse ``--alphas`` when it is read, so that a bad value is argparse's one-line usage
    error (exit 2) rather than a traceback later."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, parse_alphas(values))
        except ValueError as exc:
            parser.error(f"argument {option_string}: {exc}")


def add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """The scorer's options, shared by every command that scores (one owner for them)."""
    from benchmark.scoring import PROTOCOLS

    parser.add_argument("--iou", choices=("box", "mask"), default="box",
                        help="box IoU (xywh) or mask IoU (RLE/polygons); default box")
    parser.add_argument("--alphas", nargs="+", default=[0.5], action=_AlphasAction,
                        metavar="ALPHA",
                        help="IoU thresholds in (0, 1]: numbers (spaces or commas between), "
                             "or 'hota' for TrackEval's 19 (0.05..0.95); default 0.5 as "
                             "published")
    parser.add_argument("--caption-metrics", nargs="*", default=list(OFFICIAL_CAPTION_METRICS),
                        metavar="METRIC",
                        help="subset of cider meteor spice (default: all three, the official "
                             "CapA); give none for DetA/AssA/HOTA only")
    parser.add_argument("--score-threshold", type=float, default=0.5,
                        help="keep predictions with score > this (default 0.5)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="reference",
                        help="reference (default, comparable with papers) or a corrected variant")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes for matching (default: all cores)")
    parser.add_argument("--cache", default="default",
                        help="caption-score cache file (default: user cache); 'none' disables")
    parser.add_argument("--corenlp-dir", default=None,
                        help="folder with the Stanford CoreNLP 3.6.0 jars for SPICE "
                             "(or set BENCHMARK_CORENLP_DIR; `benchmark fetch-spice` downloads)")
    parser.add_argument("--meteor-engine", choices=("python", "java"), default="python",
                        help="METEOR 1.5 in Python (default: the jar's scores, no Java needed) or "
                             "the jar itself")
    parser.add_argument("--java", default="java", help="Java executable for SPICE (and --meteor-engine java)")


def scoring_options(args: argparse.Namespace) -> dict:
    """Keyword arguments for :func:`benchmark.chota` from the parsed options."""
    alphas = args.alphas if args.alphas == "hota" else parse_alphas(args.alphas)
    # "cider meteor" and "cider,meteor" both work: older commands took a comma-separated list.
    metrics = tuple(m for item in args.caption_metrics for m in item.split(",") if m)
    return dict(iou=args.iou, alphas=alphas, caption_metrics=metrics,
                score_threshold=args.score_threshold, protocol=args.protocol,
                num_workers=args.workers, cache=None if args.cache == "none" else args.cache,
                corenlp_dir=args.corenlp_dir, java=args.java, meteor_engine=args.meteor_engine)


def register(subparsers) -> None:
    parser = subparsers.add_parser("score", help="score predictions against ground truth (CHOTA)",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="ground truth (.json / .json.gz)")
    parser.add_argument("--pred", required=True, help="predictions (.json / .json.gz)")
    add_scoring_options(parser)
    parser.add_argument("--json", dest="json_out",
                        help="write scores, settings, per-alpha values ('-': standard output, "
                             "the table then goes to standard error)")
    parser.add_argument("--csv", dest="csv_out",
                        help="write the per-video table ('-': standard output)")
    parser.add_argument("--plot", dest="plot_out", help="write a PNG of the fields vs alpha")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (one is shown only on a terminal)")
    parser.set_defaults(func=run)


def check_outputs(text_outputs: dict[str, str | None],
                  file_outputs: dict[str, str | None] | None = None) -> bool:
    """Check the ``-`` (standard output) uses among the output options, before any work:
    at most one text output may take standard output, and file-only outputs (a PNG) may not;
    and every file path must be one the atomic writer may replace (no symbolic link, device
    or folder), so that a refused path fails before anything is written.
    Returns whether standard output is taken (the console table then goes to stderr).

    Example:
        >>> check_outputs({"--json": "-", "--csv": "v.csv"})
        True
    """
    from benchmark.atomic import check_output_path
    from benchmark.errors import OutputError

    for path in (*text_outputs.values(), *(file_outputs or {}).values()):
        if path and path != "-":
            check_output_path(path)
    for option, path in (file_outputs or {}).items():
        if path == "-":
            raise OutputError(f"{option} -: standard output is only for text outputs "
                              f"({', '.join(text_outputs)}); give a file path")
    taken = [option for option, path in text_outputs.items() if path == "-"]
    if len(taken) > 1:
        raise OutputError(f"{' and '.join(taken)} both name standard output ('-'); "
                          "give a file path to all but one")
    return bool(taken)


def run(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from benchmark import report
    from benchmark.commands.console import show_progress, table_console
    from benchmark.scoring import chota

    to_stdout = check_outputs({"--json": args.json_out, "--csv": args.csv_out},
                              {"--plot": args.plot_out})
    # With '-' standard output carries only the JSON/CSV (pipeable); everything else to stderr.
    messages = sys.stderr if to_stdout else sys.stdout
    with warnings.catch_warnings(record=True) as caught:
        result = chota(args.gt, args.pred, progress=show_progress(args.quiet),
                       **scoring_options(args))
    for caught_warning in caught:  # other warnings (libraries) as Python shows them
        if str(caught_warning.message) not in result.warnings:
            warnings.showwarning(caught_warning.message, caught_warning.category,
                                 caught_warning.filename, caught_warning.lineno)
    for message in result.warnings:  # the result's own: one plain line each, whatever the filters
        print(f"warning: {message}", file=sys.stderr)
    report.print_table(result, title=f"CHOTA: {args.pred}",
                       console=table_console(stderr=to_stdout))
    for path, write in ((args.json_out, report.write_json), (args.csv_out, report.write_csv),
                        (args.plot_out, report.plot_alpha_curves)):
        if path:
            write(result, path)
            if path != "-":
                print(f"wrote {path}", file=messages)
    return 0
