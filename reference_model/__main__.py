"""``python -m reference_model train|predict``: the MaskCaptioner reference model's commands.

Example:
    $ python -m reference_model train --config tiny --data synthetic:num_videos=64,seed=0 --out runs/tiny
    $ python -m reference_model predict --checkpoint runs/tiny/checkpoint.pt \\
          --data synthetic:num_videos=16,seed=1 --out preds.json
    $ benchmark score --gt val/gt.json --pred preds.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from benchmark.cli import run_command


def _train(args: argparse.Namespace) -> int:
    from reference_model.config import get_config
    from reference_model.train import TRAIN_PRESETS, train

    overrides = {k: v for k, v in (("clip_len_infer", args.clip_len),) if v is not None}
    config = get_config(args.config, dataset=args.dataset, **overrides)
    preset = TRAIN_PRESETS[args.config]
    opts = dataclasses.replace(preset, **{k: v for k, v in {
        "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "stage": args.stage,
        "seed": args.seed, "checkpoint_every": args.checkpoint_every,
        "cpu_threads": args.threads}.items() if v is not None})
    path = train(config=config, data=args.data, out=args.out, opts=opts, resume=args.resume,
                 tokenizer_path=args.tokenizer, backbone_path=args.backbone, lm_path=args.language_model,
                 vision_path=args.caption_vision,
                 init_checkpoint=args.init)
    print(f"checkpoint: {path}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import torch

    from reference_model.data import load_source
    from reference_model.inference import predict
    from reference_model.train import load_checkpoint

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    if device == "cpu":
        torch.set_num_threads(args.threads)
    model, tokenizer, ckpt = load_checkpoint(args.checkpoint, map_location=device)
    changes = {k: v for k, v in (("score_threshold", args.score_threshold), ("t_agg", args.t_agg),
                                 ("t_match", args.t_match), ("k_match", args.k_match)) if v is not None}
    if changes:
        model.cfg = dataclasses.replace(model.cfg, **changes)
        model.caption_head.cfg = model.cfg
    model.to(device)
    records = predict(model, load_source(args.data), tokenizer=tokenizer, category_ids=ckpt["category_ids"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(records))
    os.replace(tmp, out)
    print(f"{len(records)} predictions in {len({r['track_id'] for r in records})} tracks -> {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Parser of ``python -m reference_model``."""
    parser = argparse.ArgumentParser(prog="python -m reference_model",
                                     description="MaskCaptioner reference model (train / predict).")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train a model")
    tr.add_argument("--config", choices=["tiny", "paper"], default="tiny")
    tr.add_argument("--dataset", choices=["lvvis", "vidstg", "vln", "bensmot"],
                    help="paper inference settings (T, T_match, K_match, T_agg) of this dataset")
    tr.add_argument("--data", required=True, help="folder with gt.json, a gt.json, or synthetic:KEY=VALUE,...")
    tr.add_argument("--out", required=True, help="run folder (checkpoint.pt, tokenizer/)")
    tr.add_argument("--stage", choices=["detector", "caption", "end2end"])
    tr.add_argument("--init", help="start from this checkpoint's weights (e.g. the detector stage)")
    tr.add_argument("--resume", action="store_true", help="continue out/checkpoint.pt")
    tr.add_argument("--steps", type=int)
    tr.add_argument("--batch-size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument("--seed", type=int)
    tr.add_argument("--checkpoint-every", type=int)
    tr.add_argument("--clip-len", type=int, help="clip length at inference")
    tr.add_argument("--threads", type=int, help="CPU threads (default 1: fastest for tiny)")
    tr.add_argument("--tokenizer", help="local folder of a pretrained tokenizer")
    tr.add_argument("--backbone", help="local folder of pretrained backbone weights")
    tr.add_argument("--language-model", help="local folder of a pretrained OPT")
    tr.add_argument("--caption-vision", help="local folder of a pretrained BLIP-2 vision model")
    tr.set_defaults(func=_train)
    pr = sub.add_parser("predict", help="write per-frame predictions for `benchmark score`")
    pr.add_argument("--checkpoint", required=True)
    pr.add_argument("--data", required=True)
    pr.add_argument("--out", required=True)
    pr.add_argument("--score-threshold", type=float)
    pr.add_argument("--t-match", type=int)
    pr.add_argument("--k-match", type=int)
    pr.add_argument("--t-agg", type=int)
    pr.add_argument("--cpu", action="store_true")
    pr.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    pr.set_defaults(func=_predict)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2."""
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
