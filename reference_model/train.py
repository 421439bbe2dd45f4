"""Training loop: AdamW with a step schedule, tqdm progress, atomic checkpoints with the RNG
states (a resumed run continues bit-identically on CPU), CUDA mixed precision, gradient
accumulation, torchrun multi-GPU (DistributedDataParallel), and a log of losses, clips/s and
memory (``train_log.jsonl``, TensorBoard when installed).

Stages (paper section 3.3): ``detector`` trains segmentation/detection/classification;
``caption`` freezes the detector and tunes the caption head, clip by clip or, with
``video_captions``, one video of T_agg clips at a time; ``end2end`` trains everything.
Several data specs are drawn with sampling ratios (:class:`reference_model.data.MixedClips`);
named schedules of the paper are in :mod:`reference_model.recipes`.

Example:
    $ python -m reference_model train --config tiny --data synthetic:num_videos=64,seed=0 --out runs/tiny
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import resource
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from benchmark.errors import InputError
from reference_model.config import ModelConfig
from reference_model.clip_features import FrameFeatures, class_embeddings_for, load_feature_file
from reference_model.data import (
    ClipDataset, MixedClips, VideoClips, category_frequencies, collate, collate_videos, load_source,
)
from reference_model.matcher import ClipTargets, SetCriterion
from reference_model.model import MaskCaptioner
from reference_model.official import normalise_clips
from reference_model.tokenizer import load_tokenizer, train_word_tokenizer

STAGES = ("detector", "caption", "end2end")
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings (paper appendix A.4.3 unless noted)."""

    steps: int
    batch_size: int
    lr: float = 1e-4
    weight_decay: float = 0.05
    backbone_lr_multiplier: float = 0.1
    # Decay by 10x at these fractions of the steps.
    decay_at: tuple[float, ...] = (0.9, 0.95)
    grad_clip: float = 0.01
    stage: str = "end2end"
    seed: int = 0
    checkpoint_every: int = 200
    # Data loading (see reference_model.data): worker processes with prefetching, the
    # official augmentations (clip-wide horizontal flip, short edge drawn from
    # ``short_edges``, long edge at most ``max_size``), and skipping clips whose frames
    # cannot be read (counted) instead of stopping with the file's name.
    workers: int = 0
    # Caption stage only: video-level caption tuning (paper section 3.3), one video per
    # step (batch_size 1): up to T_agg clips, each track captioned once from its aggregated
    # clips. Otherwise captions are tuned clip by clip.
    video_captions: bool = False
    # Micro-batches of ``batch_size`` clips per optimiser step (a step sees batch_size x
    # accumulate clips: the paper's batch of 8 on GPUs that hold fewer clips at once).
    accumulate: int = 1
    # Every this many steps: losses, learning rate, clips/s and peak memory to
    # ``out/train_log.jsonl`` and, when the tensorboard package is installed, TensorBoard.
    log_every: int = 20
    augment: bool = False
    short_edges: tuple[int, ...] | None = None
    max_size: int | None = None
    skip_broken: bool = False
    # CPU threads. The tiny model's operations are small: with more than one thread OpenMP
    # synchronisation dominates, and on a shared machine one step got 17x slower (4.3 s vs
    # 0.25 s measured with two busy neighbours on 2 cores).
    cpu_threads: int = 1


# The tiny model starts from random weights on CPU: a larger rate, no backbone damping and
# a looser clip make it learn in minutes (these are not the paper's settings).
TRAIN_PRESETS: dict[str, TrainOptions] = {
    "tiny": TrainOptions(steps=3000, batch_size=4, lr=5e-4, backbone_lr_multiplier=1.0, grad_clip=1.0,
                         checkpoint_every=500),
    "paper": TrainOptions(steps=22000, batch_size=4),
}


def _distributed() -> tuple[int, int, int, bool]:
    """(rank, local rank, world size, launched by torchrun). Under torchrun the run is
    distributed even with one process, so that ``--nproc_per_node=1`` exercises the
    DistributedDataParallel path a multi-GPU run takes."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return (int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0)),
                int(os.environ["WORLD_SIZE"]), True)
    return 0, 0, 1, False


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically: a crash mid-save never destroys the previous checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def build_model(config: ModelConfig, tokenizer, *, backbone_path: str | None = None,
                lm_path: str | None = None, vision_path: str | None = None,
                class_embeddings: torch.Tensor | None = None) -> MaskCaptioner:
    """The model for ``config`` with the tokenizer's special ids; pretrained parts from
    local folders when given; ``class_embeddings`` (C, 512) for a zero-shot class head."""
    model = MaskCaptioner(config=config, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          class_embeddings=class_embeddings)
    if backbone_path:
        model.pixel_decoder.load_backbone(backbone_path)
    if lm_path:
        model.caption_head.load_language_model(lm_path)
    if vision_path:
        model.caption_head.load_vision(vision_path)
    return model


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu", **overrides: Any):
    """Rebuild (model, tokenizer, checkpoint dict) from ``checkpoint.pt`` and the tokenizer
    folder saved next to it; ``overrides`` change inference fields of its configuration."""
    path = Path(path)
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    tokenizer = load_tokenizer(path.parent / "tokenizer")
    model = build_model(ModelConfig.from_dict({**ckpt["config"], **overrides}), tokenizer)
    model.load_state_dict(ckpt["model"])
    return model, tokenizer, ckpt


def _param_groups(model: MaskCaptioner, opts: TrainOptions) -> list[dict]:
    if opts.stage == "caption":
        return [{"params": [p for p in model.caption_head.parameters() if p.requires_grad], "lr": opts.lr}]
    encoder = model.pixel_decoder.backbone if model.cfg.official else model.pixel_decoder.module.encoder
    backbone = {id(p) for p in encoder.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    if opts.stage == "detector":
        head = {id(p) for p in model.caption_head.parameters()}
        params = [p for p in params if id(p) not in head]
    return [
        {"params": [p for p in params if id(p) in backbone], "lr": opts.lr * opts.backbone_lr_multiplier},
        {"params": [p for p in params if id(p) not in backbone], "lr": opts.lr},
    ]


def train(*, config: ModelConfig, data: str | list[str], out: str | Path, opts: TrainOptions,
          ratios: list[float] | None = None, resume: bool = False, tokenizer_path: str | None = None,
          backbone_path: str | None = None, lm_path: str | None = None,
          vision_path: str | None = None, init_checkpoint: str | None = None,
          clip_features: list[str] | None = None, class_embeddings: str | None = None,
          clip_model: str | None = None, progress: bool = True) -> Path:
    """Train and return the checkpoint path (``out/checkpoint.pt``).

    ``data`` is one data spec or several, drawn with sampling ``ratios`` (default equal);
    ``resume`` continues from ``out/checkpoint.pt`` (model, optimiser, step, data order);
    ``init_checkpoint`` starts a new stage from another run's weights.

    A zero-shot class head (``config.class_head == "zero_shot"``) reads ``clip_features``,
    one CLIP image-feature file per data spec (``extract-clip-features``, or the official
    ``*_clip_feature.pkl``), and class-name embeddings from ``class_embeddings`` (a .npy, one
    row per category in id order) or computed with ``clip_model`` (a local CLIP folder). A
    new run needs them; with ``init_checkpoint`` they replace the checkpoint's, and the data
    may then have other categories than the checkpoint (fine-tuning on a new vocabulary).

    Example:
        >>> from reference_model.config import get_config
        >>> train(config=get_config("tiny"), data="synthetic:num_videos=64,seed=0",
        ...       out="runs/tiny", opts=TRAIN_PRESETS["tiny"])           # doctest: +SKIP
        PosixPath('runs/tiny/checkpoint.pt')
    """
    if opts.stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}")
    if opts.video_captions and (opts.stage != "caption" or opts.batch_size != 1):
        raise InputError("video-level caption tuning is the caption stage's, one video per step: "
                         f"use stage 'caption' and batch size 1 (got {opts.stage!r}, "
                         f"{opts.batch_size}); --accumulate gives more videos per step",
                         field="video_captions")
    rank, local_rank, world, distributed = _distributed()
    if distributed:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(opts.cpu_threads)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    torch.manual_seed(opts.seed + rank)
    random.seed(opts.seed + rank)
    np.random.seed(opts.seed + rank)

    specs = [data] if isinstance(data, (str, Path)) else list(data)
    sources = [load_source(spec) for spec in specs]
    records = {c["id"]: c for source in sources for c in source.gt["categories"]}
    categories = sorted(records)
    embed = (lambda: class_embeddings_for([records[c] for c in categories], embeddings=class_embeddings,
                                          clip_model=clip_model))
    state = previous = None
    new_vocabulary = False
    if resume and ckpt_path.exists():
        model, tokenizer, state = load_checkpoint(ckpt_path)
        config, previous = model.cfg, state
    else:
        if init_checkpoint and is_converted(init_checkpoint):
            model, tokenizer = load_converted_for_training(init_checkpoint)
            config = model.cfg
            if config.class_head == "zero_shot" and (class_embeddings or clip_model):
                model.set_class_embeddings(embed())
                config, new_vocabulary = model.cfg, True
            elif config.num_classes != len(categories):
                hint = (" (give their embeddings, --class-embeddings or --clip-model, to fine-tune its zero-shot "
                        "head on them)" if config.class_head == "zero_shot" else "")
                raise InputError(f"the converted {config.name!r} checkpoint classifies {config.num_classes} "
                                 f"categories, the data has {len(categories)}{hint}", source=sources[0].name,
                                 field="categories")
        elif init_checkpoint:
            model, tokenizer, previous = load_checkpoint(init_checkpoint)
            config = model.cfg
            if config.class_head == "zero_shot" and (class_embeddings or clip_model):
                model.set_class_embeddings(embed())
                config, new_vocabulary = model.cfg, True
        else:
            config = ModelConfig.from_dict({**config.to_dict(), "num_classes": len(categories)})
            tokenizer = (load_tokenizer(tokenizer_path) if tokenizer_path else
                         train_word_tokenizer(a.get("caption", "") for source in sources
                                              for a in source.gt["annotations"]))
            model = build_model(config, tokenizer, backbone_path=backbone_path, lm_path=lm_path,
                                vision_path=vision_path,
                                class_embeddings=embed() if config.class_head == "zero_shot" else None)
        if rank == 0:
            tokenizer.save_pretrained(out / "tokenizer")
    if previous is not None and previous["category_ids"] != categories and not new_vocabulary:
        hint = (" (give the new categories' embeddings, --class-embeddings or --clip-model, to fine-tune the "
                "zero-shot head on them)" if config.class_head == "zero_shot" else "")
        raise InputError(f"the categories {categories} differ from the checkpoint's "
                         f"{previous['category_ids']}{hint}", source=sources[0].name, field="categories")
    features = _feature_files(config, clip_features, class_embeddings, clip_model, specs)
    if config.official:
        # The official caption head: OPT frozen (as the official training), EVA as configured.
        model.caption_head.lm.requires_grad_(not config.freeze_lm)
        model.caption_head.vision.requires_grad_(not config.freeze_caption_vision)
    model.to(device)
    if opts.stage == "caption":
        for p in model.detector_parameters():
            p.requires_grad_(False)

    clip_sets = [
        ClipDataset(source=source, clip_len=config.clip_len_train, short_edge=config.short_edge,
                    category_ids=categories, tokenize=_Tokenize(tokenizer, official=config.official,
                                                                max_tokens=config.max_caption_tokens),
                    short_edges=opts.short_edges, max_size=opts.max_size, augment=opts.augment,
                    skip_broken=opts.skip_broken, clip_features=feature_file)
        for source, feature_file in zip(sources, features)]
    if opts.video_captions:
        dataset = MixedClips([VideoClips(c, t_agg=config.t_agg) for c in clip_sets],
                             ratios or [1.0] * len(sources))
    else:
        dataset = MixedClips(clip_sets, ratios or [1.0] * len(sources))
    optimizer = torch.optim.AdamW(_param_groups(model, opts), lr=opts.lr, weight_decay=opts.weight_decay)
    milestones = [int(f * opts.steps) for f in opts.decay_at]
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
    use_amp = device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    class_weights = category_frequencies(sources, categories) if config.class_head == "zero_shot" else None
    net: torch.nn.Module = TrainingStep(model, stage=opts.stage, video_captions=opts.video_captions,
                                        class_weights=class_weights)
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(
            net, device_ids=[local_rank] if device.type == "cuda" else None, find_unused_parameters=True)

    def checkpoint() -> None:
        if rank == 0:
            save_checkpoint(ckpt_path, {
                "model": model.state_dict(), "config": config.to_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": step, "category_ids": categories,
                "stage": opts.stage,
                "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                        "python": random.getstate(),
                        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None},
            })

    # The whole run's clip order is fixed by the seed; resuming continues it where it stopped
    # (without loading the batches already seen).
    per_step = opts.batch_size * opts.accumulate
    order = dataset.order(opts.steps * per_step, seed=opts.seed + rank)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=opts.batch_size, collate_fn=collate_videos if opts.video_captions else collate,
        sampler=order[step * per_step:], num_workers=opts.workers,
        prefetch_factor=4 if opts.workers else None, persistent_workers=opts.workers > 0,
        pin_memory=device.type == "cuda")
    skipped = 0
    model.train()
    if opts.stage == "caption":
        # A frozen detector also keeps its normalisation statistics.
        model.eval()
        model.caption_head.train()
    if config.official:
        model.caption_head.lm.eval()  # the official OPT runs in eval mode (no dropout)
    batches = iter(loader)
    if state is not None and "rng" in state:
        # Dropout and friends continue as if never stopped (restored after the loader drew
        # its seed, as the uninterrupted run did before its first step).
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if state["rng"].get("cuda") is not None and device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], device)
    bar = tqdm(total=opts.steps, initial=step, desc=f"train {opts.stage}", disable=not progress or rank != 0)
    log = TrainLog(out, enabled=rank == 0)
    window_start, window_clips = time.perf_counter(), 0
    exhausted = False
    while step < opts.steps and not exhausted:
        optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        micro = 0
        while micro < opts.accumulate:
            try:
                clips, targets, unreadable = next(batches)
            except StopIteration:  # every draw was spent and some clips were unreadable
                exhausted = True
                break
            skipped += unreadable
            if not targets:
                continue
            micro += 1
            clips = clips.to(device, non_blocking=True)
            targets = [_to_device(t, device) for t in targets]
            # Gradients are averaged over the processes once per step, not per micro-batch.
            sync = micro == opts.accumulate or not distributed
            with (contextlib.nullcontext() if sync else net.no_sync()):
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    loss, logged = net(clips, targets)
                if loss.requires_grad:
                    scaler.scale(loss / opts.accumulate).backward()
            window_clips += len(targets)
            for key, value in logged.items():
                sums[key] = sums.get(key, 0.0) + value / opts.accumulate
        if micro == 0:
            break
        if any(p.grad is not None for g in optimizer.param_groups for p in g["params"]):
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], opts.grad_clip)
            scaler.step(optimizer)
            scaler.update()
        scheduler.step()
        step += 1
        bar.update(1)
        bar.set_postfix({**{k: f"{v:.3f}" for k, v in sums.items()},
                         **({"skipped": skipped} if skipped else {})})
        if step % opts.log_every == 0 or step == opts.steps:
            elapsed = time.perf_counter() - window_start
            log.write(step, {**sums, "lr": scheduler.get_last_lr()[-1],
                             "clips_per_s": window_clips * world / max(elapsed, 1e-9),
                             **memory_gib(device), "skipped": skipped})
            window_start, window_clips = time.perf_counter(), 0
        if step % opts.checkpoint_every == 0:
            checkpoint()
    bar.close()
    log.close()
    if skipped and rank == 0:
        print(f"skipped {skipped} clips with unreadable frames", file=sys.stderr)
    checkpoint()
    if distributed:
        # Every process returns only once rank 0's final checkpoint is written: a next stage
        # (a recipe's caption stage) reads it.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return ckpt_path


def _feature_files(config: ModelConfig, clip_features: list[str] | None, class_embeddings: str | None,
                   clip_model: str | None, specs: list) -> list[FrameFeatures | None]:
    """The CLIP feature file of each data spec (loaded), checked against the class head."""
    if config.class_head != "zero_shot":
        given = [flag for flag, value in (("--clip-features", clip_features), ("--class-embeddings", class_embeddings),
                                          ("--clip-model", clip_model)) if value]
        if given:
            raise InputError(f"{', '.join(given)}: only the zero-shot class head reads CLIP features "
                             f"(config {config.name!r} has a {config.class_head} head; train with --zero-shot)")
        return [None] * len(specs)
    if not clip_features or len(clip_features) != len(specs):
        raise InputError(f"the zero-shot class head reads each clip's CLIP image features: give one feature file "
                         f"per --data ({len(specs)}) with --clip-features (made by extract-clip-features)",
                         field="clip_features")
    return [load_feature_file(path) for path in clip_features]


def resident_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process now (Linux /proc), which shows a leak as growth.

    Example:
        >>> resident_bytes() > 0
        True
    """
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_gib(device: torch.device) -> dict[str, float]:
    """Memory now and at its peak, in GiB: the process's resident memory on CPU (from
    /proc, so that a leak shows as growth), allocated tensors on CUDA.

    Example:
        >>> sorted(memory_gib(torch.device("cpu")))
        ['memory_gib', 'peak_memory_gib']
    """
    if device.type == "cuda":
        return {"memory_gib": torch.cuda.memory_allocated(device) / 2**30,
                "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30}
    resident = resident_bytes()
    # ru_maxrss (KiB on Linux) is updated lazily by the kernel: never below the present.
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, resident)
    return {"memory_gib": resident / 2**30, "peak_memory_gib": peak / 2**30}


class TrainLog:
    """One JSON line per logged step in ``out/train_log.jsonl`` (appended: a resumed run
    continues the file), and the same scalars as TensorBoard events in ``out/tensorboard``
    when the tensorboard package is installed."""

    def __init__(self, out: Path, *, enabled: bool) -> None:
        self.enabled = enabled
        self.path = out / "train_log.jsonl"
        self.board = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the JSON lines hold the same numbers
                SummaryWriter = None
            if SummaryWriter is not None:
                self.board = SummaryWriter(log_dir=str(out / "tensorboard"))

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"step": step, **values}) + "\n")
        if self.board is not None:
            for key, value in values.items():
                self.board.add_scalar(key, value, step)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


class TrainingStep(torch.nn.Module):
    """The whole loss computation inside one ``forward``, so that DistributedDataParallel
    sees (and synchronises) every parameter that receives a gradient, caption head included."""

    def __init__(self, model: MaskCaptioner, *, stage: str, video_captions: bool = False,
                 class_weights: torch.Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self.stage = stage
        self.video_captions = video_captions
        self.criterion = SetCriterion(config=model.cfg, class_weights=class_weights)

    def forward(self, clips: torch.Tensor, targets: list[ClipTargets]) -> tuple[torch.Tensor, dict[str, float]]:
        if self.model.cfg.official:
            valid = torch.stack([t.pixel_valid for t in targets]).to(clips.device)
            clips = normalise_clips(clips, valid)
        features = None
        if self.model.cfg.class_head == "zero_shot":
            features = torch.stack([t.clip_features for t in targets]).to(clips.device)
        with torch.set_grad_enabled(self.stage != "caption" and torch.is_grad_enabled()):
            output = self.model(clips, features)
        det_loss, logged, matches = self.criterion(output.layers, targets)
        loss = det_loss if self.stage != "caption" else det_loss.detach()
        if self.stage != "detector":
            caption_loss = (self.model.video_caption_loss if self.video_captions
                            else self.model.caption_loss)
            cap = caption_loss(output, targets, matches)
            if cap is not None:
                loss = loss + self.model.cfg.weight_lm * cap
                logged["lm"] = float(cap.detach())
        return loss, logged


def _to_device(targets: ClipTargets, device: torch.device) -> ClipTargets:
    return replace(targets, labels=targets.labels.to(device), masks=targets.masks.to(device),
                   boxes=targets.boxes.to(device), box_valid=targets.box_valid.to(device),
                   pixel_valid=None if targets.pixel_valid is None else targets.pixel_valid.to(device),
                   clip_features=None if targets.clip_features is None else targets.clip_features.to(device))


class _Tokenize:
    """Caption -> token ids; a class, not a lambda, so that loader worker processes can
    receive it. Ours: no special tokens (the caption head adds BOS and EOS). Official: as
    the official training tokenises, ``caption + "\\n"`` with OPT's BOS, at most
    ``max_tokens`` ids (the "\\n" may be cut)."""

    def __init__(self, tokenizer, *, official: bool = False, max_tokens: int = 32) -> None:
        self.tokenizer = tokenizer
        self.official = official
        self.max_tokens = max_tokens

    def __call__(self, text: str) -> list[int]:
        if self.official:
            return self.tokenizer(text + "\n", truncation=True, max_length=self.max_tokens)["input_ids"]
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]


def is_converted(path: str | Path) -> bool:
    """Whether ``path`` is a ``convert-official`` folder (config.json + model.pt)."""
    return Path(path).is_dir() and (Path(path) / "config.json").is_file()


def load_converted_for_training(folder: str | Path):
    """(model, tokenizer) of a ``convert-official`` folder, to fine-tune: float32 weights
    and the OPT tokenizer the folder holds (``convert-official --tokenizer``)."""
    from reference_model.convert import load_converted

    if not (Path(folder) / "tokenizer").is_dir():
        raise InputError("a converted checkpoint trains with its OPT tokenizer: convert it with --tokenizer "
                         "(facebook/opt-2.7b's tokenizer folder)", source=str(folder), field="tokenizer")
    model = load_converted(folder)
    model.float()
    return model, load_tokenizer(Path(folder) / "tokenizer")
