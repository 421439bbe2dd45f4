"""Inference throughput of the official configurations (``reference_model.official``).

    python benchmarks/predict_speed.py [--config vidstg-tempagg] [--device cpu|cuda]
        [--frames 64] [--height 480] [--width 854] [--captions 2] [--json out.json]

Builds the FULL-SIZE model of ``--config`` (Swin-B, 100 queries, EVA ViT-g at 364 px,
BERT-base Q-Former, OPT-2.7B) with random weights (no checkpoint is needed: the work per
frame does not depend on the values), generates a ``--frames`` video of moving rectangles at
``--height`` x ``--width`` and reports:

* detection + tracking + post-processing throughput over the whole video (frames/s), with
  captioning switched off (every per-clip score stays under the caption threshold);
* the cost of one caption (seconds per captioned track: 32 or 8 EVA + Q-Former calls with
  aggregation, or 1 without, then beam search 5 over OPT-2.7B), timed on ``--captions``
  tracks;
* peak memory (GPU: ``torch.cuda.max_memory_allocated``; CPU: the process's peak RSS).

On CUDA the model runs as the official evaluation does: fp16 autocast, OPT in float16. There
is no peer in this script: the official code's throughput could not be measured here (it
needs detectron2 and the compiled deformable-attention op).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reference_model.config import CONFIGS, get_config  # noqa: E402
from reference_model.model import MaskCaptioner  # noqa: E402
from reference_model.official import clip_ranges, preprocess, run_video  # noqa: E402
from reference_model.train import memory_gib  # noqa: E402


def random_model(name: str, device: torch.device, *, seed: int = 0) -> MaskCaptioner:
    """The full-size model of ``name`` with random weights, built without the minutes that
    initialising EVA ViT-g and OPT-2.7B take: the caption head is allocated empty and filled
    with N(0, 0.02) (LayerNorm weights 1)."""
    torch.manual_seed(seed)
    model = MaskCaptioner(config=get_config(name), empty_caption_head=True)
    head = model.caption_head.to_empty(device=device)
    with torch.no_grad():
        for pname, param in head.named_parameters():
            if "norm" in pname.lower() and pname.endswith("weight"):
                param.fill_(1.0)
            else:
                param.normal_(0.0, 0.02)
    model.to(device)
    if device.type == "cuda":
        model.caption_head.lm.half()
    return model.eval()


def moving_rectangles(frames: int, height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """(T, H, W, 3) uint8: a gradient background with three rectangles crossing it."""
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, width, dtype=np.float32)[None, :, None].repeat(height, 0).repeat(3, 2)
    video = np.repeat(base[None], frames, axis=0)
    for _ in range(3):
        color = rng.integers(0, 256, 3)
        h, w = rng.integers(height // 8, height // 3), rng.integers(width // 8, width // 3)
        y0, x0 = rng.integers(0, height - h), rng.integers(0, width - w)
        dy, dx = rng.integers(-3, 4, 2)
        for t in range(frames):
            y, x = int(np.clip(y0 + dy * t, 0, height - h)), int(np.clip(x0 + dx * t, 0, width - w))
            video[t, y:y + h, x:x + w] = color
    return video.astype(np.uint8)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = random_model(args.config, device)
    build_s = time.perf_counter() - started
    video = moving_rectangles(args.frames, args.height, args.width)
    read = lambda positions: video[positions]  # noqa: E731
    features = torch.randn(args.frames, model.cfg.clip_feature_dim)
    # Detection, tracking and post-processing only: no track reaches a threshold above 1.
    model.caption_head.score_threshold = 2.0
    synchronise(device)
    started = time.perf_counter()
    result = run_video(model, read, num_frames=args.frames, clip_features=features, progress=True)
    synchronise(device)
    detect_s = time.perf_counter() - started
    # Captions: the first --captions tracks forced above the threshold, on the same video.
    model.caption_head.score_threshold = model.cfg.caption_threshold
    images = preprocess(video, short_edge=model.cfg.short_edge, max_size=model.cfg.max_size)[0].to(device)
    ranges = clip_ranges(args.frames, model.cfg.clip_len_infer)
    nclips = len(ranges)
    embeds = [torch.randn(args.captions, model.cfg.hidden_dim, device=device)] * nclips
    shape = (args.captions, model.cfg.clip_len_infer, 4) if model.cfg.mode == "box" else \
        (args.captions, model.cfg.clip_len_infer, images.shape[-2] // 4, images.shape[-1] // 4)
    regions = [torch.rand(shape, device=device)] * nclips
    scores = torch.full((args.captions, nclips), 0.9, device=device)
    synchronise(device)
    started = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"):
        ids = model.caption_head.caption_tracks(images, frame_ranges=ranges, embeddings=embeds, regions=regions,
                                                scores=scores)
    synchronise(device)
    caption_s = (time.perf_counter() - started) / args.captions
    return {
        "config": args.config, "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__, "frames": args.frames, "size": [args.height, args.width],
        "model_build_s": round(build_s, 1), "detect_track_s": round(detect_s, 2),
        "frames_per_s": round(args.frames / detect_s, 2), "tracks_out": len(result.scores),
        "seconds_per_caption": round(caption_s, 2), "caption_tokens": [len(i) for i in ids if i is not None],
        "peak_memory_gib": round(memory_gib(device)["peak_memory_gib"], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="vidstg-tempagg", choices=[n for n, c in CONFIGS.items() if c.official])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--captions", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args()
    with torch.no_grad():
        row = measure(args)
    from rich.console import Console
    from rich.table import Table

    table = Table(title="official-configuration inference (random full-size weights)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in row.items():
        table.add_row(key, str(value))
    Console().print(table)
    if args.json:
        from benchmark.atomic import write_json_atomic

        write_json_atomic(row, args.json, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
