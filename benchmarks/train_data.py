"""Training data loading of the reference model: throughput, and memory over a long run.

    python benchmarks/train_data.py [--out benchmarks/results] [--steps 2000] [--train-steps 2000]

Writes a procedural set at real sizes to disk as JPEG folders, as LV-VIS / YouTube-VIS ship
their frames: videos of 360x640 (30 frames) mixed with 480x854 (20 frames), up to 5 moving
objects each with masks and captions. Then, with the paper's batch of 4 clips of T=2, the
official augmentations and a short edge drawn from (360, 480):

* loader throughput in clips/s (JPEG decoding, resizing, targets, padding to the batch's
  largest frame) with 0 and with 2 worker processes;
* resident memory of the loader process and its workers every 100 batches over ``--steps``
  batches: it must stay flat (no cache grows with the videos visited);
* with ``--train-steps``, the ``tiny`` model trained that many steps on a mixed-size
  procedural set (64x64 and 48x80 videos), its resident memory read from the run's
  ``train_log.jsonl`` every 100 steps.

Writes a Markdown table and a JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

MiB = 1024 * 1024


def _tree_rss(pid: int) -> int:
    """Resident bytes of a process and its children (the loader's workers)."""
    from reference_model.train import resident_bytes

    total = resident_bytes(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(_tree_rss(int(child)) for child in children)


def _write_set(folder: Path) -> list[str]:
    from benchmark.synthetic import generate

    specs = []
    for name, (height, width, frames, videos, seed) in {
            "small": (360, 640, 30, 24, 0), "large": (480, 854, 20, 16, 1)}.items():
        generate(num_videos=videos, num_frames=frames, height=height, width=width,
                 max_objects=5, seed=seed).save(folder / name, image_format="jpg")
        specs.append(str(folder / name))
    return specs


def _loader(specs: list[str], *, workers: int, batches: int):
    from reference_model.data import ClipDataset, MixedClips, collate, load_source

    sources = [load_source(spec) for spec in specs]
    categories = sorted({c["id"] for s in sources for c in s.gt["categories"]})
    mixed = MixedClips([ClipDataset(source=s, clip_len=2, short_edge=480, category_ids=categories,
                                    tokenize=lambda text: [1] * len(text.split()),
                                    short_edges=(360, 480), max_size=1333, augment=True)
                        for s in sources], [1.0, 1.0])
    return torch.utils.data.DataLoader(
        mixed, batch_size=4, collate_fn=collate, sampler=mixed.order(batches * 4, seed=0),
        num_workers=workers, prefetch_factor=4 if workers else None,
        persistent_workers=workers > 0)


def loader_throughput(specs: list[str], workers: int, batches: int = 60) -> float:
    loader = iter(_loader(specs, workers=workers, batches=batches + 5))
    for _ in range(5):  # workers started, first batches in flight
        next(loader)
    start = time.perf_counter()
    clips = sum(len(next(loader)[1]) for _ in range(batches))
    return clips / (time.perf_counter() - start)


def loader_memory(specs: list[str], steps: int) -> list[tuple[int, float]]:
    loader = iter(_loader(specs, workers=2, batches=steps))
    samples = []
    for step in range(1, steps + 1):
        next(loader)
        if step % 100 == 0:
            samples.append((step, _tree_rss(os.getpid()) / MiB))
            print(f"  loader step {step}: {samples[-1][1]:.0f} MiB", flush=True)
    return samples


def training_memory(steps: int, folder: Path) -> list[tuple[int, float]]:
    import dataclasses

    from reference_model.config import get_config
    from reference_model.train import TRAIN_PRESETS, train

    data = ["synthetic:num_videos=64,num_frames=16,height=64,width=64,seed=0",
            "synthetic:num_videos=64,num_frames=10,height=48,width=80,seed=1"]
    opts = dataclasses.replace(TRAIN_PRESETS["tiny"], steps=steps, log_every=100,
                               checkpoint_every=steps, augment=True, short_edges=(48, 64))
    train(config=get_config("tiny"), data=data, out=folder / "run", opts=opts)
    lines = [json.loads(line) for line in (folder / "run" / "train_log.jsonl").read_text().splitlines()]
    return [(line["step"], line["memory_gib"] * 1024) for line in lines]


def _growth(samples: list[tuple[int, float]]) -> str:
    # From the first sample: workers and allocator pools are warm by then.
    first, last = samples[0][1], samples[-1][1]
    top = max(m for _, m in samples)
    return (f"{first:.0f} MiB at step {samples[0][0]}, {last:.0f} MiB at step {samples[-1][0]} "
            f"(max {top:.0f}; {last - first:+.0f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--steps", type=int, default=2000, help="loader batches for the memory run")
    parser.add_argument("--train-steps", type=int, default=0, help="tiny training steps (0: skip)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        print("writing the JPEG set ...", flush=True)
        specs = _write_set(Path(tmp))
        for workers in (0, 2):
            rate = loader_throughput(specs, workers)
            rows.append((f"loader throughput, {workers} workers (clips/s)", f"{rate:.1f}"))
            print(rows[-1], flush=True)
        rows.append((f"loader + workers resident memory over {args.steps} batches",
                     _growth(loader_memory(specs, args.steps))))
        print(rows[-1], flush=True)
        if args.train_steps:
            rows.append((f"tiny training resident memory over {args.train_steps} steps",
                         _growth(training_memory(args.train_steps, Path(tmp)))))
            print(rows[-1], flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {machine} (python benchmarks/train_data.py "
             f"--steps {args.steps} --train-steps {args.train_steps}):", "",
             "| measure | value |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_data.md").write_text("\n".join(lines) + "\n")
    (args.out / "train_data.json").write_text(json.dumps(dict(rows), indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
