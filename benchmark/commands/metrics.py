"""Sub-commands for the neighbouring benchmarks' metrics: ``trackmap``, ``lgvis``, ``jf``,
``vocap``, ``bensmot`` and ``judge``. Same conventions as ``benchmark score``: a console table, ``--json``
(settings and scores), ``--csv`` (the per-category / per-object / per-video table), a progress
bar unless ``--quiet``.

Example:
    $ benchmark trackmap --gt lvvis_val.json --pred results.json --lvvis --json map.json
    $ benchmark vocap --gt sav_caption_val.json --pred vocap.json --caption-metrics cider meteor
    $ benchmark judge --gt vicas/annotations/v0.1 --pred preds/ --model-path /models/llama3
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import __version__
from benchmark.commands.console import show_progress


def _add_outputs(parser: argparse.ArgumentParser, table: str) -> None:
    parser.add_argument("--json", dest="json_out",
                        help="write settings and scores as JSON ('-': standard output)")
    parser.add_argument("--csv", dest="csv_out",
                        help=f"write the {table} table as CSV ('-': standard output)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (one is shown only on a terminal)")


def _emit(args: argparse.Namespace, *, title: str, summary: dict[str, float],
          table: pd.DataFrame, settings: dict[str, Any], notes: tuple[str, ...] = (),
          warnings: list[str] | tuple[str, ...] = ()) -> int:
    """Print the summary table and write the requested files (atomically); each of the
    result's ``warnings`` is one ``warning: ...`` line on standard error."""
    import json
    import sys

    from rich.table import Table

    from benchmark.atomic import write_text_output
    from benchmark.commands.console import table_console
    from benchmark.commands.score import check_outputs

    # With '-' standard output carries only the JSON/CSV (pipeable); everything else to stderr.
    to_stdout = check_outputs({"--json": args.json_out, "--csv": args.csv_out})
    messages = sys.stderr if to_stdout else sys.stdout
    for message in warnings:
        print(f"warning: {message}", file=sys.stderr)
    console = table_console(stderr=to_stdout)
    out = Table(title=title)
    out.add_column("metric")
    out.add_column("value", justify="right")
    for name, value in summary.items():
        text = "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else (
            f"{value:.0f}" if float(value).is_integer() and abs(value) > 1 else f"{value:.4f}")
        out.add_row(name, text)
    console.print(out)
    for note in notes:
        console.print(f"[dim]- {note}[/dim]")
    clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in summary.items()}
    if args.json_out:
        doc = {"package_version": __version__, "settings": settings, "scores": clean}
        if warnings:
            doc["warnings"] = list(warnings)
        if write_text_output(args.json_out, json.dumps(doc, ensure_ascii=False, indent=2)) != "-":
            print(f"wrote {args.json_out}", file=messages)
    if args.csv_out:
        if write_text_output(args.csv_out, table.to_csv(index=False, float_format="%.6g")) != "-":
            print(f"wrote {args.csv_out}", file=messages)
    return 0


def _run_trackmap(args: argparse.Namespace) -> int:
    from benchmark.metrics.track_map import lvvis_category_groups, track_map
    from benchmark.metrics.tracks import load_tracks

    gt = load_tracks(args.gt, role="gt")
    groups = lvvis_category_groups(list(gt.categories.values())) if args.lvvis else None
    res = track_map(gt, args.pred, iou=args.iou, category_groups=groups,
                    progress=show_progress(args.quiet))
    return _emit(args, title=f"Track mAP ({args.iou} IoU): {Path(args.pred).name}", summary=res.summary,
                 table=res.per_category,
                 settings={"metric": "track_map", "iou": args.iou, "lvvis_groups": args.lvvis,
                           "protocol": "youtube-vis"},
                 notes=("-1 = undefined (no GT in that range)",))


def _run_lgvis(args: argparse.Namespace) -> int:
    from benchmark.metrics.lgvis import lgvis_map

    res = lgvis_map(args.gt, args.pred, progress=show_progress(args.quiet))
    return _emit(args, title=f"ViCaS LG-VIS: {Path(args.pred).name}", summary=res.summary,
                 table=res.per_threshold, settings={"metric": "vicas_lgvis"},
                 notes=("values in [0, 1]; the ViCaS paper prints them x100",))


def _run_jf(args: argparse.Namespace) -> int:
    import warnings

    from benchmark.metrics.jf import j_and_f

    with warnings.catch_warnings(record=True) as caught:
        res = j_and_f(args.gt, args.pred, bound_th=args.bound_th,
                      skip_first_and_last=not args.all_frames, progress=show_progress(args.quiet))
    for caught_warning in caught:  # other warnings (libraries) as Python shows them
        if str(caught_warning.message) not in res.warnings:
            warnings.showwarning(caught_warning.message, caught_warning.category,
                                 caught_warning.filename, caught_warning.lineno)
    return _emit(args, title=f"J&F: {Path(args.pred).name}", summary=res.summary, table=res.per_object,
                 settings={"metric": "j_and_f", "bound_th": args.bound_th,
                           "skip_first_and_last": not args.all_frames},
                 warnings=res.warnings)


def _run_vocap(args: argparse.Namespace) -> int:
    from benchmark.metrics.vocap import vocap

    res = vocap(args.gt, args.pred, caption_metrics=tuple(args.caption_metrics),
                masks=not args.no_masks, tokenize=args.tokenize, meteor_engine=args.meteor_engine,
                skip_first_and_last=not args.all_frames, progress=show_progress(args.quiet))
    return _emit(args, title=f"VoCap object captioning: {Path(args.pred).name}", summary=res.summary,
                 table=res.per_object,
                 settings={"metric": "vocap", "caption_metrics": args.caption_metrics,
                           "tokenize": args.tokenize, "skip_first_and_last": not args.all_frames})


def _run_bensmot(args: argparse.Namespace) -> int:
    from benchmark.metrics.bensmot import bensmot_captions
    from benchmark.scoring import chota

    res = bensmot_captions(args.gt, args.pred, protocol=args.protocol,
                           score_threshold=args.caption_score_threshold)
    # DetA and AssA as Table 5 prints them: HOTA sub-metrics with box IoU at alpha 0.5.
    tracking = chota(args.gt, args.pred, iou="box", caption_metrics=(), progress=show_progress(args.quiet))
    summary = {"DetA": tracking["DetA"], "AssA": tracking["AssA"], "HOTA": tracking["HOTA"], **res.summary}
    return _emit(args, title=f"BenSMOT instance captions: {Path(args.pred).name}", summary=summary,
                 table=res.per_pair,
                 settings={"metric": "bensmot_captions", "protocol": args.protocol,
                           "caption_score_threshold": args.caption_score_threshold,
                           "tracking": "box IoU, alpha 0.5, score > 0.5"},
                 notes=("CIDEr on pycocoevalcap's scale: the papers print it x100",),
                 warnings=tracking.warnings)


def _run_judge(args: argparse.Namespace) -> int:
    import dataclasses

    from benchmark.captions.cache import PairScoreCache
    from benchmark.metrics.caption_accuracy import (DECODINGS, GeminiJudge, TransformersJudge,
                                                    caption_accuracy, load_vicas_caption_items)

    items = load_vicas_caption_items(args.gt, args.pred)
    decoding = DECODINGS[args.decoding]
    changes = {k: v for k, v in (("seed", args.seed), ("max_new_tokens", args.max_new_tokens)) if v is not None}
    decoding = dataclasses.replace(decoding, **changes)
    if args.model_path:
        judge = TransformersJudge(model_path=args.model_path, device=args.device, decoding=decoding)
    else:
        judge = GeminiJudge(model=args.gemini_model, decoding=decoding)
    cache = None if args.cache == "none" else PairScoreCache(
        None if args.cache == "default" else args.cache)
    try:
        res = caption_accuracy(items, judge=judge, prompt_version=args.prompt_version,
                               cache=cache, progress=show_progress(args.quiet))
    finally:
        if cache is not None:
            cache.close()
    return _emit(args, title=f"ViCaS caption accuracy: {Path(args.pred).name}", summary=res.summary,
                 table=res.per_video,
                 settings={"metric": "vicas_caption_accuracy", "judge": judge.model_id,
                           "decoding": dataclasses.asdict(decoding), "prompt_version": args.prompt_version},
                 notes=("comparable with the ViCaS paper only with Llama-3-70B-Instruct",))


def register(subparsers) -> None:
    fmt = argparse.RawDescriptionHelpFormatter

    p = subparsers.add_parser("trackmap", help="YouTube-VIS / LV-VIS track mAP",
                              description=__doc__, formatter_class=fmt)
    p.add_argument("--gt", required=True, help="GT (per-track YouTube-VIS or COCO-video)")
    p.add_argument("--pred", required=True, help="predictions (per-track or frame-level)")
    p.add_argument("--iou", choices=("mask", "box"), default="mask", help="default mask")
    p.add_argument("--lvvis", action="store_true",
                   help="also AP_base / AP_novel from the categories' LV-VIS 'partition'")
    _add_outputs(p, "per-category")
    p.set_defaults(func=_run_trackmap)

    p = subparsers.add_parser("lgvis", help="ViCaS LG-VIS mAP", description=__doc__,
                              formatter_class=fmt)
    p.add_argument("--gt", required=True, help="folder (or JSON list) of ViCaS GT files")
    p.add_argument("--pred", required=True, help="folder (or JSON list) of prediction files")
    _add_outputs(p, "per-threshold")
    p.set_defaults(func=_run_lgvis)

    p = subparsers.add_parser("jf", help="DAVIS J&F of masklets", description=__doc__,
                              formatter_class=fmt)
    p.add_argument("--gt", required=True)
    p.add_argument("--pred", required=True, help="masklets naming their GT object (track_id)")
    p.add_argument("--bound-th", type=float, default=0.008,
                   help="boundary tolerance: fraction of the diagonal (<1) or pixels (>=1)")
    p.add_argument("--all-frames", action="store_true",
                   help="score every frame (DAVIS / SA-V leave out the first and last)")
    _add_outputs(p, "per-object")
    p.set_defaults(func=_run_jf)

    p = subparsers.add_parser("vocap", help="VoCap object captioning (multi-reference) + J&F",
                              description=__doc__, formatter_class=fmt)
    p.add_argument("--gt", required=True, help="GT objects with 'captions' (references)")
    p.add_argument("--pred", required=True, help="one caption (and masklet) per GT object")
    p.add_argument("--caption-metrics", nargs="+", default=["cider"],
                   choices=("cider", "meteor", "spice"), help="default: cider (as published)")
    p.add_argument("--tokenize", action="store_true", help="PTB-tokenize first (needs Java)")
    p.add_argument("--meteor-engine", choices=("python", "java"), default="python",
                   help="METEOR 1.5 in Python (default; the jar's scores) or the jar itself")
    p.add_argument("--no-masks", action="store_true", help="skip J&F")
    p.add_argument("--all-frames", action="store_true", help="J&F on every frame")
    _add_outputs(p, "per-object")
    p.set_defaults(func=_run_vocap)

    p = subparsers.add_parser("bensmot", help="BenSMOT instance-caption CIDEr (+ DetA, AssA)",
                              description=__doc__, formatter_class=fmt)
    p.add_argument("--gt", required=True, help="BenSMOT ground truth (benchmark convert bensmot)")
    p.add_argument("--pred", required=True, help="per-track or frame-level predictions, one caption per track")
    p.add_argument("--protocol", choices=("captionformer", "smoter"), default="captionformer",
                   help="pairing of MaskCaptioner's official code (default, Table 5) or SMOTer's")
    p.add_argument("--caption-score-threshold", type=float, default=None,
                   help="caption only tracks scoring above this (default: every track, as both codes)")
    _add_outputs(p, "per-pair")
    p.set_defaults(func=_run_bensmot)

    p = subparsers.add_parser("judge", help="ViCaS caption accuracy with an LLM judge",
                              description=__doc__, formatter_class=fmt)
    p.add_argument("--gt", required=True, help="folder (or JSON list) of ViCaS GT files")
    p.add_argument("--pred", required=True, help="folder (or JSON list) with 'pred_caption'")
    p.add_argument("--model-path", help="local transformers causal LM folder (else Gemini)")
    p.add_argument("--device", default="cpu", help="torch device for --model-path")
    p.add_argument("--decoding", choices=("vicas", "greedy"), default="vicas",
                   help="vicas (default): sampling at temperature 0.6, top-p 0.9, seed 1, up to 8191 "
                        "new tokens, as ViCaS; greedy: deterministic, up to 8 new tokens")
    p.add_argument("--seed", type=int, help="sampling seed (default 1, as ViCaS)")
    p.add_argument("--max-new-tokens", type=int, help="default: the decoding's (8191 / 8)")
    p.add_argument("--gemini-model", default="gemini-2.0-flash")
    p.add_argument("--prompt-version", default="vicas-1")
    p.add_argument("--cache", default="default",
                   help="judge-answer cache file (default: user cache); 'none' disables")
    _add_outputs(p, "per-video")
    p.set_defaults(func=_run_judge)
