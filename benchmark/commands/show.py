"""``benchmark show``: draw one video with its ground truth, predictions and captions.

Example:
    $ benchmark show --gt gt.json --pred pred.json --video video_00001 --out video.mp4 \\
          --contact-sheet sheet.png
    $ benchmark show --gt gt.json --pred pred.json --video 3 --out frames/ --frames JPEGImages/
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("show", help="render one video with boxes, track ids and captions",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, help="ground truth (.json / .json.gz)")
    p.add_argument("--pred", required=True, help="predictions (.json / .json.gz)")
    p.add_argument("--video", required=True, help="video name or id")
    p.add_argument("--out", required=True, help="an .mp4 file, or a folder for one PNG per frame")
    p.add_argument("--frames", help="frames folder (default: JPEGImages next to the ground truth)")
    p.add_argument("--video-file", help="read the frames from this video file instead (OpenCV)")
    p.add_argument("--contact-sheet", help="also write a PNG of up to 8 frames")
    p.add_argument("--iou", choices=("box", "mask"), default="box", help="draw boxes or mask contours")
    p.add_argument("--score-threshold", type=float, default=0.5, help="draw predictions scoring above this")
    p.add_argument("--alpha", type=float, default=0.5, help="IoU threshold of the caption matching")
    p.add_argument("--fps", type=float, default=5.0, help="frames per second of an .mp4")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    from benchmark.show import render

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = render(args.gt, args.pred, video=args.video, out=args.out, frames_root=args.frames,
                     video_file=args.video_file, iou=args.iou, score_threshold=args.score_threshold,
                     alpha=args.alpha, contact_sheet=args.contact_sheet, fps=args.fps)
    for warning in caught:
        print(f"warning: {warning.message}")
    print(f"wrote {out.video if out.video else f'{len(out.frames)} frames under {args.out}'}"
          + (f" and {out.contact_sheet}" if out.contact_sheet else ""))
    return 0
