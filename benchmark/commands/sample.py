"""``benchmark sample``: the bundled sample data and the synthetic-video generator.

Example:
    $ benchmark sample make --out benchmark/sample_data     # regenerate the bundled files
    $ benchmark sample paths                                # where the bundled files are
    $ benchmark sample generate --out synth --num-videos 500 --height 64 --width 64
"""

from __future__ import annotations

import argparse


def _make(args: argparse.Namespace) -> int:
    from benchmark.synthetic import write_sample

    for name, path in write_sample(args.out).items():
        print(f"{name}: {path}")
    return 0


def _paths(args: argparse.Namespace) -> int:
    from benchmark.sample_data import sample_paths

    paths = sample_paths()
    print(f"gt: {paths.gt}")
    for quality, path in paths.submissions.items():
        print(f"{quality}: {path}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    from benchmark.atomic import write_json_atomic
    from benchmark.synthetic import generate, make_submission

    data = generate(num_videos=args.num_videos, num_frames=args.num_frames, height=args.height,
                    width=args.width, max_objects=args.max_objects, seed=args.seed,
                    progress=True)
    if args.no_frames:
        gt_path = args.out / "gt.json"
        write_json_atomic(data.gt, gt_path)
    else:
        gt_path = data.save(args.out, image_format=args.image_format, progress=True)
    print(f"gt: {gt_path}")
    for quality in args.submissions:
        path = args.out / "submissions" / f"{quality}.json"
        write_json_atomic(make_submission(data.gt, quality=quality, seed=args.seed), path)
        print(f"{quality}: {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``benchmark sample {make,paths,generate}``."""
    from pathlib import Path

    parser = subparsers.add_parser("sample", help="bundled sample data and synthetic videos")
    commands = parser.add_subparsers(dest="sample_command", metavar="SUBCOMMAND")
    commands.required = True

    make = commands.add_parser("make", help="regenerate the bundled sample (bit-identical)")
    make.add_argument("--out", type=Path, required=True, help="output folder")
    make.set_defaults(func=_make)

    paths = commands.add_parser("paths", help="print the paths of the bundled sample files")
    paths.set_defaults(func=_paths)

    gen = commands.add_parser("generate", help="write a synthetic moving-shapes dataset")
    gen.add_argument("--out", type=Path, required=True, help="output folder")
    gen.add_argument("--num-videos", type=int, required=True)
    gen.add_argument("--num-frames", type=int, default=16)
    gen.add_argument("--height", type=int, default=64)
    gen.add_argument("--width", type=int, default=64)
    gen.add_argument("--max-objects", type=int, default=3)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--image-format", choices=("png", "jpg"), default="png",
                     help="png keeps pixels exact (masks match them); jpg is smaller")
    gen.add_argument("--no-frames", action="store_true", help="write gt.json only")
    gen.add_argument("--submissions", nargs="*", default=[], choices=("good", "fair", "poor"),
                     help="also write corrupted-GT submissions of these qualities")
    gen.set_defaults(func=_generate)
