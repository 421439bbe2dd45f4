"""``benchmark convert``: build a benchmark's ground truth (or per-frame predictions) from the
files the dataset ships.

Example:
    $ benchmark convert vidstg --src VidSTG/annotations/val_annotations.json \\
        --vidor VidOR/annotations/training --out vidstg_val_gt.json
    $ benchmark convert predictions --src results.json --gt vln_val_gt.json \\
        --frames vln_val_extended.json --out vln_val_pred.json
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmark.errors import InputError

DATASETS = ("vidstg", "vln", "bensmot", "lvvis", "lvis", "sav", "vicas", "predictions")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``convert`` sub-command."""
    parser = subparsers.add_parser(
        "convert", help="build ground truth from a dataset's own files",
        description="Convert a source dataset into the benchmark's COCO-video ground truth "
                    "(or per-track predictions into per-frame ones). The output is written "
                    "atomically: a failure never leaves a partial file.")
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--src", required=True,
                        help="vidstg: sentence file; vln: meta_expressions.json; bensmot: "
                             "dataset root; lvvis/lvis: instances json; sav: SA-V mask folder "
                             "or file; vicas: annotations/<version>/ folder; predictions: "
                             "per-track results.json")
    parser.add_argument("--out", required=True, help="output JSON path")
    parser.add_argument("--split", default="val",
                        help="bensmot: split folder under --src (default val; BenSMOT calls "
                             "its evaluation split 'test')")
    parser.add_argument("--vidor", nargs="+", default=[],
                        help="vidstg: VidOR annotation folder(s), e.g. VidOR/annotations/training")
    parser.add_argument("--uvo", help="vln: UVO_sparse_{split}_video.json")
    parser.add_argument("--extra-masks", help="vln: VNG extra_masks.json")
    parser.add_argument("--captions", help="bensmot: instance_caption.json; sav: captions file")
    parser.add_argument("--gt", help="predictions: the converted ground truth")
    parser.add_argument("--frames",
                        help="predictions: video list the model ran on (sparse-frame filtering)")
    parser.add_argument("--all-frames", action="store_true",
                        help="vicas: keep the propagated 30 fps frames, not only the human ones")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def _require(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if not getattr(args, name.replace("-", "_")):
            raise InputError(f"`benchmark convert {args.dataset}` needs --{name}")


def convert(args: argparse.Namespace) -> Any:
    """Run the converter that ``args.dataset`` names and return its output."""
    from benchmark import datasets

    progress = not args.quiet
    if args.dataset == "vidstg":
        _require(args, "vidor")
        return datasets.convert_vidstg(sentences=args.src, vidor=args.vidor,
                                       show_progress=progress)
    if args.dataset == "vln":
        _require(args, "uvo")
        return datasets.convert_vln(expressions=args.src, uvo=args.uvo,
                                    extra_masks=args.extra_masks, show_progress=progress)
    if args.dataset == "bensmot":
        _require(args, "captions")
        return datasets.convert_bensmot(root=args.src, split=args.split, captions=args.captions,
                                        show_progress=progress)
    if args.dataset == "lvvis":
        return datasets.convert_lvvis(src=args.src, show_progress=progress)
    if args.dataset == "lvis":
        return datasets.convert_lvis(src=args.src, show_progress=progress)
    if args.dataset == "sav":
        _require(args, "captions")
        return datasets.convert_sav(masks=[args.src], captions=args.captions,
                                    show_progress=progress)
    if args.dataset == "vicas":
        return datasets.convert_vicas(annotations=args.src, human_only=not args.all_frames,
                                      show_progress=progress)
    _require(args, "gt")
    return datasets.convert_predictions(args.src, args.gt, frames=args.frames,
                                        show_progress=progress)


def run(args: argparse.Namespace) -> int:
    """Convert and write the output atomically; print a one-line summary."""
    from benchmark.atomic import write_json_atomic
    from benchmark.datacard import dataset_statistics

    result = convert(args)
    path = write_json_atomic(result, args.out)
    if isinstance(result, list):
        print(f"wrote {path}: {len(result)} per-frame predictions")
    else:
        stats = dataset_statistics(result)
        print(f"wrote {path}: {stats['videos']} videos, {stats['frames']} frames, "
              f"{stats['boxes']} boxes, {stats['captioned_tracks']} captioned tracks")
    return 0
