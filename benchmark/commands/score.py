"""``benchmark score``: score a prediction file with CHOTA and write the table, JSON, CSV, plot.

Example:
    $ benchmark score --gt gt.json --pred pred.json --iou mask --alphas hota \\
        --json scores.json --csv per_video.csv --plot alphas.png
"""

from __future__ import annotations

import argparse

from benchmark.fields import OFFICIAL_CAPTION_METRICS


def add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """The scorer's options, shared by every command that scores (one owner for them)."""
    from benchmark.scoring import PROTOCOLS

    parser.add_argument("--iou", choices=("box", "mask"), default="box",
                        help="box IoU (xywh) or mask IoU (RLE/polygons); default box")
    parser.add_argument("--alphas", nargs="+", default=["0.5"],
                        help="IoU thresholds: numbers, or 'hota' for TrackEval's 19 "
                             "(0.05..0.95); default 0.5 as published")
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
    parser.add_argument("--java", default="java", help="Java executable for METEOR/SPICE")


def scoring_options(args: argparse.Namespace) -> dict:
    """Keyword arguments for :func:`benchmark.chota` from the parsed options."""
    alphas = "hota" if [a.lower() for a in args.alphas] == ["hota"] else [
        float(a) for a in args.alphas]
    # "cider meteor" and "cider,meteor" both work: older commands took a comma-separated list.
    metrics = tuple(m for item in args.caption_metrics for m in item.split(",") if m)
    return dict(iou=args.iou, alphas=alphas, caption_metrics=metrics,
                score_threshold=args.score_threshold, protocol=args.protocol,
                num_workers=args.workers, cache=None if args.cache == "none" else args.cache,
                corenlp_dir=args.corenlp_dir, java=args.java)


def register(subparsers) -> None:
    parser = subparsers.add_parser("score", help="score predictions against ground truth (CHOTA)",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gt", required=True, help="ground truth (.json / .json.gz)")
    parser.add_argument("--pred", required=True, help="predictions (.json / .json.gz)")
    add_scoring_options(parser)
    parser.add_argument("--json", dest="json_out", help="write scores, settings, per-alpha values")
    parser.add_argument("--csv", dest="csv_out", help="write the per-video table")
    parser.add_argument("--plot", dest="plot_out", help="write a PNG of the fields vs alpha")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark import report
    from benchmark.scoring import chota

    result = chota(args.gt, args.pred, progress=not args.quiet, **scoring_options(args))
    report.print_table(result, title=f"CHOTA: {args.pred}")
    for path, write in ((args.json_out, report.write_json), (args.csv_out, report.write_csv),
                        (args.plot_out, report.plot_alpha_curves)):
        if path:
            write(result, path)
            print(f"wrote {path}")
    return 0
