"""``python -m reference_model train|recipe|predict|convert-official|golden-check``: the
MaskCaptioner reference model's commands.

Example:
    $ python -m reference_model train --config tiny --data synthetic:num_videos=64,seed=0 --out runs/tiny
    $ python -m reference_model recipe --list
    $ python -m reference_model recipe lvvis --data lvvis=data/lvvis_train --out runs/lvvis
    $ python -m reference_model predict --checkpoint runs/tiny/checkpoint.pt \\
          --data synthetic:num_videos=16,seed=1 --out preds.json
    $ benchmark score --gt val/gt.json --pred preds.json
    $ python -m reference_model convert-official ckpt_vidstg_tempagg.pth --config vidstg-tempagg \\
          --out converted/vidstg-tempagg
    $ python -m reference_model predict --config vidstg-tempagg --checkpoint converted/vidstg-tempagg \\
          --data data/vidstg_val --clip-features vidstg_val_clip_feature.pkl --out preds.json
    $ python -m reference_model golden-check ../shared/golden/model/vidstg_tempagg
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from benchmark.cli import parse_pairs, run_command

from reference_model.config import CONFIGS

OFFICIAL = [name for name, config in CONFIGS.items() if config.official]


def _train(args: argparse.Namespace) -> int:
    from reference_model.config import get_config
    from reference_model.train import TRAIN_PRESETS, train

    overrides = {k: v for k, v in (("clip_len_infer", args.clip_len),
                                   ("class_head", "zero_shot" if args.zero_shot else None)) if v is not None}
    config = get_config(args.config, dataset=args.dataset, **overrides)
    preset = TRAIN_PRESETS[args.config]
    opts = dataclasses.replace(preset, **{k: v for k, v in {
        "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "stage": args.stage,
        "seed": args.seed, "checkpoint_every": args.checkpoint_every,
        "cpu_threads": args.threads, "workers": args.workers, "augment": args.augment or None,
        "accumulate": args.accumulate, "log_every": args.log_every,
        "video_captions": args.video_captions or None,
        "short_edges": tuple(args.short_edges) if args.short_edges else None,
        "max_size": args.max_size, "skip_broken": args.skip_broken_frames or None,
    }.items() if v is not None})
    path = train(config=config, data=args.data, ratios=args.ratios, out=args.out, opts=opts,
                 resume=args.resume,
                 tokenizer_path=args.tokenizer, backbone_path=args.backbone, lm_path=args.language_model,
                 vision_path=args.caption_vision, init_checkpoint=args.init,
                 clip_features=args.clip_features, class_embeddings=args.class_embeddings,
                 clip_model=args.clip_model)
    print(f"checkpoint: {path}")
    return 0


def _recipe(args: argparse.Namespace) -> int:
    from benchmark.errors import InputError
    from reference_model.recipes import format_recipes, run_recipe

    if args.list:
        print(format_recipes())
        return 0
    if args.name is None or args.out is None:
        raise InputError("give a recipe NAME and --out DIR (--list shows the recipes)")
    data = parse_pairs(args.data or [], form="ROLE=SPEC", field="data")
    features = parse_pairs(args.clip_features or [], form="ROLE=FILE", field="clip_features")
    options = {k: v for k, v in (("workers", args.workers), ("cpu_threads", args.threads),
                                 ("accumulate", args.accumulate)) if v is not None}
    path = run_recipe(args.name, data=data, out=args.out, config_name=args.config, init=args.init,
                      scale=args.scale, options=options, class_head=args.class_head, clip_features=features,
                      class_embeddings=args.class_embeddings, clip_model=args.clip_model,
                      tokenizer_path=args.tokenizer,
                      backbone_path=args.backbone, lm_path=args.language_model, vision_path=args.caption_vision)
    print(f"checkpoint: {path}")
    return 0


def _device(args: argparse.Namespace) -> str:
    import torch

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    if device == "cpu":
        torch.set_num_threads(args.threads)
    return device


def _predict_official(args: argparse.Namespace, trained=None) -> int:
    """Official configurations: a converted folder, or ``trained`` (a fine-tuned official
    model loaded from its checkpoint.pt)."""
    from benchmark.atomic import write_json_atomic
    from benchmark.errors import InputError
    from reference_model.convert import load_converted
    from reference_model.data import load_source
    from reference_model.official import predict_dataset

    ignored = [flag for flag, value in (("--score-threshold", args.score_threshold), ("--t-agg", args.t_agg),
                                        ("--t-match", args.t_match), ("--k-match", args.k_match),
                                        ("--class-embeddings", args.class_embeddings),
                                        ("--clip-model", args.clip_model)) if value is not None]
    if ignored:
        raise InputError(f"{', '.join(ignored)} apply to tiny/paper runs; an official configuration keeps its "
                         "published settings (use --caption-mode for Table 8's variants)", source=args.checkpoint)
    # Inference variants the paper reports for the released models (Tables 7 and 8).
    overrides = {k: v for k, v in (("caption_mode", args.caption_mode), ("clip_len_infer", args.clip_len))
                 if v is not None}
    if trained is None:
        model = load_converted(args.checkpoint, device=_device(args), **overrides)
    else:
        if args.clip_len is not None:
            trained.cfg = dataclasses.replace(trained.cfg, clip_len_infer=args.clip_len)
            trained.caption_head.cfg = trained.cfg
        model = trained.to(_device(args)).eval()
    if args.config is not None and model.cfg.name != args.config:
        raise InputError(f"the checkpoint was converted for {model.cfg.name!r}, not {args.config!r}",
                         source=args.checkpoint)
    source = load_source(args.data)
    clip_features = _video_clip_features(args, model.cfg, source)
    folder = Path(args.checkpoint) if Path(args.checkpoint).is_dir() else Path(args.checkpoint).parent
    decode = _caption_decoder(args.tokenizer or str(folder / "tokenizer"))
    records, results = predict_dataset(model, source, decode=decode, clip_features=clip_features, seed=args.seed)
    write_json_atomic(records, args.out)
    if args.results_json:
        write_json_atomic(results, args.results_json)
    tracks = sum(len(r["pred_scores"]) for r in results)
    print(f"{len(records)} predictions in {tracks} tracks over {len(results)} videos -> {args.out}")
    if not records:
        print("warning: no track passed the thresholds: the predictions are empty", file=sys.stderr)
    return 0


def _video_clip_features(args: argparse.Namespace, config, source):
    """For a zero-shot class head: video id -> the video's (T, 512) CLIP image features."""
    if config.class_head != "zero_shot":
        return None
    from benchmark.errors import InputError
    from reference_model.clip_features import load_feature_file, vidstg_frame_key

    if args.clip_features is None:
        raise InputError(f"config {config.name!r} classifies with per-frame CLIP image features: "
                         "give --clip-features FILE (extract-clip-features, or the official *_clip_feature.pkl)",
                         source=args.data)
    features = load_feature_file(args.clip_features)
    if args.clip_feature_names == "vidstg" and not features.keyed_by_image_id:
        return lambda video_id: features.for_frames(
            [vidstg_frame_key(im["file_name"]) for im in source.frame_images[video_id]])
    return lambda video_id: features.for_images(source.frame_images[video_id], source=source.name)


def _caption_decoder(folder: str):
    from benchmark.errors import InputError

    if not Path(folder).is_dir():
        raise InputError("no OPT tokenizer folder (facebook/opt-2.7b's tokenizer files): give --tokenizer DIR",
                         source=folder)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    # As the official evaluation decodes (transformers 4.28, whose default cleaned up the
    # spaces before punctuation; later releases default to leaving them).
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=True).strip()


def _convert_official(args: argparse.Namespace) -> int:
    from benchmark.errors import InputError
    from reference_model.convert import convert_official

    try:
        path = convert_official(args.checkpoint, config=args.config, out=args.out, eva=args.eva, opt=args.opt,
                                trust_pickle=args.trust_pickle, overwrite=args.overwrite)
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(str(exc), source=args.checkpoint) from None
    if args.tokenizer:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(args.tokenizer, local_files_only=True).save_pretrained(Path(args.out) / "tokenizer")
    print(f"converted {args.checkpoint} ({args.config}) -> {path}")
    return 0


def _extract_clip_features(args: argparse.Namespace) -> int:
    from reference_model.clip_features import ClipImageEncoder, extract_source_features, save_feature_file
    from reference_model.data import load_source

    encoder = ClipImageEncoder.load(args.clip_model, device=_device(args))
    features = extract_source_features(load_source(args.data), encoder, key_prefix=args.key_prefix,
                                       batch_size=args.batch_size)
    path = save_feature_file(args.out, features, overwrite=args.overwrite)
    print(f"{len(features)} frame features -> {path}")
    return 0


def _golden_check(args: argparse.Namespace) -> int:
    import torch

    from reference_model.golden import check_bundle, print_report

    torch.set_num_threads(args.threads)
    passed, rows = check_bundle(args.bundle, tolerance=args.tolerance, device=args.device, autocast=args.autocast)
    print_report(rows, tolerance=args.tolerance)
    print("golden check passed" if passed else "golden check FAILED")
    return 0 if passed else 1


def _predict(args: argparse.Namespace) -> int:
    from benchmark.errors import InputError
    from reference_model.data import load_source
    from reference_model.inference import predict
    from reference_model.train import load_checkpoint

    if args.config in OFFICIAL or (Path(args.checkpoint) / "config.json").is_file():
        return _predict_official(args)
    device = _device(args)
    overrides = {} if args.caption_mode is None else {"caption_mode": args.caption_mode}
    model, tokenizer, ckpt = load_checkpoint(args.checkpoint, map_location=device, **overrides)
    if model.cfg.official:  # an official model fine-tuned here
        return _predict_official(args, trained=model)
    if overrides:
        raise InputError("--caption-mode applies to official configurations", source=args.checkpoint)
    changes = {k: v for k, v in (("score_threshold", args.score_threshold), ("t_agg", args.t_agg),
                                 ("t_match", args.t_match), ("k_match", args.k_match),
                                 ("clip_len_infer", args.clip_len)) if v is not None}
    if changes:
        model.cfg = dataclasses.replace(model.cfg, **changes)
        model.caption_head.cfg = model.cfg
    source = load_source(args.data)
    category_ids = ckpt["category_ids"]
    if args.class_embeddings or args.clip_model:
        # Zero-shot on the data's own vocabulary.
        from reference_model.clip_features import class_embeddings_for

        if model.cfg.class_head != "zero_shot":
            raise InputError("--class-embeddings / --clip-model: this checkpoint's class head is "
                             f"{model.cfg.class_head}, not zero-shot", source=args.checkpoint)
        categories = sorted(source.gt["categories"], key=lambda c: c["id"])
        model.set_class_embeddings(class_embeddings_for(categories, embeddings=args.class_embeddings,
                                                        clip_model=args.clip_model))
        model.caption_head.cfg = model.cfg
        category_ids = [c["id"] for c in categories]
    model.to(device)
    records = predict(model, source, tokenizer=tokenizer, category_ids=category_ids,
                      clip_features=_video_clip_features(args, model.cfg, source))
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
    tr.add_argument("--data", required=True, nargs="+",
                    help="folder with gt.json, a gt.json, or synthetic:KEY=VALUE,...; several are "
                         "drawn with --ratios")
    tr.add_argument("--ratios", type=float, nargs="+", help="sampling ratio of each --data (default equal)")
    tr.add_argument("--workers", type=int, help="data-loader worker processes (default 0: in the main process)")
    tr.add_argument("--video-captions", action="store_true",
                    help="caption stage: video-level tuning, one video (T_agg clips) per step, --batch-size 1")
    tr.add_argument("--accumulate", type=int,
                    help="micro-batches of --batch-size per optimiser step (gradient accumulation)")
    tr.add_argument("--log-every", type=int,
                    help="steps between lines of OUT/train_log.jsonl and TensorBoard (default 20)")
    tr.add_argument("--augment", action="store_true",
                    help="official augmentations: clip-wide flip, short edge drawn from --short-edges")
    tr.add_argument("--short-edges", type=int, nargs="+", help="training short edges to draw from")
    tr.add_argument("--max-size", type=int, help="longest edge after resizing (official: 1333)")
    tr.add_argument("--skip-broken-frames", action="store_true",
                    help="skip (and count) clips with an unreadable frame instead of stopping")
    tr.add_argument("--zero-shot", action="store_true",
                    help="the official zero-shot CLIP class head (cosine to class-name embeddings after a "
                         "cross-attention to the clip's CLIP image features) instead of the linear one")
    tr.add_argument("--clip-features", nargs="+", metavar="FILE",
                    help="zero-shot head: one CLIP image-feature file per --data (extract-clip-features, or the "
                         "official *_clip_feature.pkl)")
    tr.add_argument("--class-embeddings", metavar="NPY",
                    help="zero-shot head: (C, 512) class-name embeddings, one row per category in id order "
                         "(the official datasets/metadata/*.npy); with --init they replace the checkpoint's")
    tr.add_argument("--clip-model", metavar="DIR",
                    help="zero-shot head: local CLIP folder to embed the category names ('A photo of {name}') "
                         "instead of --class-embeddings")
    tr.add_argument("--out", required=True, help="run folder (checkpoint.pt, tokenizer/)")
    tr.add_argument("--stage", choices=["detector", "caption", "end2end"])
    tr.add_argument("--init", help="start from this checkpoint.pt's weights (e.g. the detector stage), or "
                                   "fine-tune a convert-official folder")
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
    rc = sub.add_parser("recipe", help="run a training recipe of the paper's appendix by name",
                        description="Run a named recipe's stages in order into OUT/<stage>/; re-running "
                                    "the command continues where it stopped.")
    rc.add_argument("name", nargs="?", help="recipe name (--list shows them)")
    rc.add_argument("--list", action="store_true", help="print the recipes and exit")
    rc.add_argument("--data", nargs="+", metavar="ROLE=SPEC",
                    help="each data role of the recipe: a folder with gt.json, a gt.json, or synthetic:...")
    rc.add_argument("--out", help="run folder (one sub-folder per stage)")
    rc.add_argument("--config", choices=["paper", "paper-r50", "tiny"], default="paper")
    rc.add_argument("--init", help="checkpoint.pt or convert-official folder to start from (required by the "
                                   "fine-tuning recipes)")
    rc.add_argument("--scale", type=float, default=1.0, help="multiply every stage's steps (smoke tests)")
    rc.add_argument("--workers", type=int, help="data-loader worker processes (default 0)")
    rc.add_argument("--threads", type=int, help="CPU threads (default 1)")
    rc.add_argument("--accumulate", type=int,
                    help="split each step's batch into this many micro-batches (the batch stays the recipe's)")
    rc.add_argument("--class-head", choices=["zero_shot", "linear"],
                    help="the class head to train (default the recipe's: zero_shot as the official LVIS, "
                         "VidSTG and LV-VIS checkpoints, linear as the VLN and BenSMOT ones)")
    rc.add_argument("--clip-features", nargs="+", metavar="ROLE=FILE",
                    help="zero-shot head: the CLIP image-feature file of each data role")
    rc.add_argument("--class-embeddings", metavar="NPY", help="zero-shot head: (C, 512) class-name embeddings")
    rc.add_argument("--clip-model", metavar="DIR", help="zero-shot head: local CLIP folder to embed the class names")
    rc.add_argument("--tokenizer", help="local folder of a pretrained tokenizer")
    rc.add_argument("--backbone", help="local folder of pretrained backbone weights")
    rc.add_argument("--language-model", help="local folder of a pretrained OPT")
    rc.add_argument("--caption-vision", help="local folder of a pretrained BLIP-2 vision model")
    rc.set_defaults(func=_recipe)
    pr = sub.add_parser("predict", help="write per-frame predictions for `benchmark score`")
    pr.add_argument("--config", choices=OFFICIAL,
                    help="the official configuration a convert-official folder (--checkpoint) must hold")
    pr.add_argument("--checkpoint", required=True, help="checkpoint.pt of a run, or a converted folder")
    pr.add_argument("--data", required=True, help="folder with gt.json + frames, or a gt.json")
    pr.add_argument("--out", required=True, help="per-frame predictions (the benchmark's format)")
    pr.add_argument("--results-json", help="official configs: also write the official per-track results")
    pr.add_argument("--clip-features", help="zero-shot class heads: per-frame CLIP features (.pkl / .pt)")
    pr.add_argument("--class-embeddings", metavar="NPY",
                    help="trained zero-shot head: classify the --data categories with these (C, 512) embeddings")
    pr.add_argument("--clip-model", metavar="DIR",
                    help="trained zero-shot head: embed the --data category names with this local CLIP")
    pr.add_argument("--clip-feature-names", choices=["as-is", "vidstg"], default="as-is",
                    help="vidstg: our VidSTG frame names <vid>/<f:05d>.jpg -> the official <vid>/<f+1:04d>.jpg keys")
    pr.add_argument("--tokenizer", help="official configs: OPT tokenizer folder (default CHECKPOINT/tokenizer)")
    pr.add_argument("--caption-mode", choices=["weighted-mean", "mean", "best", "middle"],
                    help="official configs: which clips a caption reads (MaskCaptioner Table 8)")
    pr.add_argument("--clip-len", type=int,
                    help="frames per inference clip (default: the configuration's; MaskCaptioner Table 7 varies it)")
    pr.add_argument("--seed", type=int, default=1234, help="official configs: RNG seed per video")
    pr.add_argument("--score-threshold", type=float)
    pr.add_argument("--t-match", type=int)
    pr.add_argument("--k-match", type=int)
    pr.add_argument("--t-agg", type=int)
    pr.add_argument("--cpu", action="store_true")
    pr.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    pr.set_defaults(func=_predict)
    co = sub.add_parser("convert-official", help="convert a released CaptionFormer checkpoint")
    co.add_argument("checkpoint", help="the official .pth (detectron2 checkpoint or state dict)")
    co.add_argument("--config", required=True, choices=OFFICIAL)
    co.add_argument("--out", required=True, help="folder for config.json, model.pt (and tokenizer/)")
    co.add_argument("--eva", help="LAVIS eva_vit_g.pth, when the checkpoint lacks the EVA weights")
    co.add_argument("--opt", help="local facebook/opt-2.7b folder, when the checkpoint lacks OPT")
    co.add_argument("--tokenizer", help="OPT tokenizer folder to copy into OUT/tokenizer")
    co.add_argument("--trust-pickle", action="store_true",
                    help="allow a checkpoint that stores Python objects besides tensors (runs its pickle)")
    co.add_argument("--overwrite", action="store_true", help="replace an existing OUT/model.pt")
    co.set_defaults(func=_convert_official)
    ex = sub.add_parser("extract-clip-features",
                        help="per-frame CLIP ViT-B/32 image features for the zero-shot configs")
    ex.add_argument("--data", required=True, help="folder with gt.json + frames, or a gt.json")
    ex.add_argument("--clip-model", required=True, help="local transformers CLIP folder (openai/clip-vit-base-patch32)")
    ex.add_argument("--out", required=True, help="feature file (the official *_clip_feature.pkl layout)")
    ex.add_argument("--key-prefix", default="", help="prepended to each frame's file_name (e.g. datasets/LVVIS/val/JPEGImages/)")
    ex.add_argument("--batch-size", type=int, default=32)
    ex.add_argument("--overwrite", action="store_true")
    ex.add_argument("--cpu", action="store_true")
    ex.add_argument("--threads", type=int, default=1)
    ex.set_defaults(func=_extract_clip_features)
    gc = sub.add_parser("golden-check", help="compare our model with an official-code golden bundle")
    gc.add_argument("bundle", help="folder with config.json, state_dict.pt, input.pt, outputs.pt")
    gc.add_argument("--tolerance", type=float, default=1e-5)
    gc.add_argument("--threads", type=int, default=2)
    gc.add_argument("--device", default="cpu", help="cpu, or cuda for the CPU-vs-GPU agreement")
    gc.add_argument("--autocast", action="store_true", help="cuda: fp16 autocast as the official evaluation")
    gc.set_defaults(func=_golden_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one line and exit with status 2."""
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
