"""Training recipes by name: the MaskCaptioner appendix's schedules (arXiv 2510.14904,
appendix A.4.3) as one call or one command per recipe.

A recipe is an ordered list of stages (detector, then caption; or end-to-end), each with the
appendix's steps and batch size, run one after the other into ``out/<stage>/``. The
optimisation is the appendix's for every stage (AdamW, lr 1e-4, weight decay 0.05, backbone
x0.1, lr / 10 at 0.9 and 0.95 of the stage's steps: the defaults of
:class:`reference_model.train.TrainOptions`), with the official augmentations (clip-wide
flip, short edge 800 for images and the configuration's own for videos, long edge at most
1333).

The VidSTG, VLN and BenSMOT caption stages tune captions at the video level (one video of
T_agg clips per step, each track captioned once from its aggregated clips; batch 1). The
LVIS/COCO, VidSTG and LV-VIS recipes train the zero-shot CLIP class head, as the official
code trained the released LV-VIS and VidSTG checkpoints (they read CLIP image features and
class-name embeddings); the VLN and BenSMOT recipes the linear one of their released
checkpoints. ``class_head`` chooses the other.

Example:
    >>> [(stage.kind, stage.steps, stage.batch_size) for stage in RECIPES["vln-finetune"].stages]
    [('detector', 15000, 8), ('caption', 500, 1)]
    >>> RECIPES["vln-finetune"].needs_init
    True

    $ python -m reference_model recipe vln-finetune --data vln=data/vln_train \\
          --init runs/vln-pretrained/checkpoint.pt --out runs/vln
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.atomic import write_json_atomic
from benchmark.errors import InputError
from reference_model.config import CONFIGS, ModelConfig, get_config

# Where a stage's weights come from: "new" = fresh weights (pretrained parts from local
# folders), or ``--init`` when one is given; "previous" = the previous stage's checkpoint;
# "init" = ``--init``, which the recipe then requires.
STARTS = ("new", "previous", "init")
# Written into a stage's folder once the stage has run all its steps: a re-run skips it.
DONE = "done.json"
# The recipe, configuration, scale, data and --init a run folder was started with.
RUN_RECORD = "recipe.json"

# What each data role holds (a folder with gt.json + frames, a gt.json, or synthetic:...).
DATA_ROLES: dict[str, str] = {
    "lvis": "LVISCap images (LVIS with synthetic captions)",
    "coco": "COCO images, categories on the LVIS ids",
    "lvvis": "LV-VISCap videos (LV-VIS with synthetic captions)",
    "vidstg": "VidSTG videos (DVOC conversion)",
    "vln": "VLN videos",
    "bensmot": "BenSMOT videos",
}

# Appendix A.4.3: images are resized to a short edge of 800 with either backbone; videos to
# the configuration's own short edge (480 Swin-B, 360 ResNet-50). Other configurations
# (tiny) use their own short edge for both.
IMAGE_SHORT_EDGE: dict[str, int] = {"paper": 800, "paper-r50": 800}

@dataclass(frozen=True)
class Stage:
    """One training run of a recipe: ``kind`` is the training stage (``detector``,
    ``caption`` or ``end2end``) and the folder it writes; ``start`` one of :data:`STARTS`."""

    kind: str
    steps: int
    batch_size: int
    start: str
    # Video-level caption tuning (caption stages): one video of T_agg clips per process and
    # micro-batch, which is the paper's batch of 1.
    video_captions: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("detector", "caption", "end2end") or self.start not in STARTS:
            raise ValueError(f"a stage is detector, caption or end2end starting from one of {STARTS}: {self}")


@dataclass(frozen=True)
class Recipe:
    """A named schedule: data roles with sampling ratios, the kind of media they hold
    (``images`` or ``videos``, which sets the short edge), the paper's per-dataset
    inference settings to store (``dataset``, see ``PAPER_INFERENCE``), the stages in order,
    where the numbers come from, and the class head of the official checkpoints of that
    data (``zero_shot`` or ``linear``)."""

    name: str
    description: str
    source: str
    data: tuple[tuple[str, float], ...]
    media: str
    dataset: str | None
    stages: tuple[Stage, ...]
    class_head: str = "zero_shot"

    @property
    def needs_init(self) -> bool:
        """Whether the recipe starts from ``--init`` (a fine-tuning recipe)."""
        return any(stage.start == "init" for stage in self.stages)


_SOURCE = "MaskCaptioner appendix A.4.3"
_RECIPES = (
    Recipe(
        name="lviscoco-pretrain",
        description="pretraining on LVISCap images mixed with COCO",
        source=f"{_SOURCE}: LVIS(+COCO) 440k detector + 5k caption steps, batch 4",
        # The appendix does not give the mixing ratio: equal draws from both sets.
        data=(("lvis", 1.0), ("coco", 1.0)),
        media="images",
        dataset=None,
        stages=(Stage("detector", 440_000, 4, "new"), Stage("caption", 5_000, 4, "previous")),
    ),
    Recipe(
        name="vidstg",
        description="training on VidSTG",
        source=f"{_SOURCE}: VidSTG 40k detector + 2k caption steps, batch 8",
        data=(("vidstg", 1.0),),
        media="videos",
        dataset="vidstg",
        # VidSTG, VLN and BenSMOT are the datasets the paper captions with T_agg > 1 clips,
        # hence the video-level caption tuning of their caption stages (our reading).
        stages=(Stage("detector", 40_000, 8, "new"), Stage("caption", 2_000, 1, "previous", True)),
    ),
    Recipe(
        name="lvvis",
        description="training on LV-VISCap",
        source=f"{_SOURCE}: LV-VIS 22k detector + 2k caption steps, batch 4",
        data=(("lvvis", 1.0),),
        media="videos",
        dataset="lvvis",
        stages=(Stage("detector", 22_000, 4, "new"), Stage("caption", 2_000, 4, "previous")),
    ),
    Recipe(
        name="vidstg-finetune",
        description="fine-tuning on VidSTG from a pretrained checkpoint",
        source=f"{_SOURCE}: fine-tuning VidSTG (15k, 2k) steps, batch 8",
        data=(("vidstg", 1.0),),
        media="videos",
        dataset="vidstg",
        stages=(Stage("detector", 15_000, 8, "init"), Stage("caption", 2_000, 1, "previous", True)),
    ),
    Recipe(
        name="vln-finetune",
        description="fine-tuning on VLN from a pretrained checkpoint",
        source=f"{_SOURCE}: fine-tuning VLN (15k, 500) steps, batch 8",
        data=(("vln", 1.0),),
        media="videos",
        dataset="vln",
        stages=(Stage("detector", 15_000, 8, "init"), Stage("caption", 500, 1, "previous", True)),
        class_head="linear",
    ),
    Recipe(
        name="bensmot-finetune",
        description="fine-tuning on BenSMOT from a pretrained checkpoint",
        source=f"{_SOURCE}: fine-tuning BenSMOT (15k, 2k) steps, batch 8",
        data=(("bensmot", 1.0),),
        media="videos",
        dataset="bensmot",
        stages=(Stage("detector", 15_000, 8, "init"), Stage("caption", 2_000, 1, "previous", True)),
        class_head="linear",
    ),
    Recipe(
        name="lvvis-end2end",
        description="end-to-end fine-tuning on LV-VISCap from a pretrained checkpoint",
        source=f"{_SOURCE}: LV-VIS end-to-end 2k steps, batch 4",
        data=(("lvvis", 1.0),),
        media="videos",
        dataset="lvvis",
        stages=(Stage("end2end", 2_000, 4, "init"),),
    ),
)
RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in _RECIPES}

# Options the recipe fixes; everything else of TrainOptions (workers, cpu_threads,
# checkpoint_every, seed, ...) may be changed with ``options``.
_RECIPE_OPTIONS = ("steps", "batch_size", "stage", "video_captions")


def scaled_steps(steps: int, scale: float) -> int:
    """``steps`` times ``scale``, rounded, at least 1 (``scale`` < 1 smoke-tests a recipe).

    Example:
        >>> scaled_steps(2_000, 1.0), scaled_steps(500, 1e-6)
        (2000, 1)
    """
    return max(1, round(steps * scale))


def training_short_edge(config: ModelConfig, media: str) -> int:
    """The short edge training frames are resized to for ``media`` (``images`` or
    ``videos``) under ``config``.

    Example:
        >>> r50 = get_config("paper-r50")
        >>> training_short_edge(r50, "images"), training_short_edge(r50, "videos")
        (800, 360)
    """
    if media == "images":
        return IMAGE_SHORT_EDGE.get(config.name, config.short_edge)
    return config.short_edge


def format_recipes() -> str:
    """The recipes as a text table: name, stages (kind steps x batch, ``video`` for
    video-level caption tuning), data roles with their ratios, class head and the paper source.

    Example:
        >>> row = next(line for line in format_recipes().splitlines() if line.startswith("vln-finetune"))
        >>> " ".join(row.split()[:9])
        'vln-finetune detector 15000x8 (--init) > caption 500x1 video vln'
    """
    rows = [("name", "stages (steps x batch)", "data", "class head", "source")]
    for recipe in sorted(RECIPES.values(), key=lambda r: r.name):
        stages = " > ".join(f"{s.kind} {s.steps}x{s.batch_size}" + (" video" if s.video_captions else "")
                            + (" (--init)" if s.start == "init" else "") for s in recipe.stages)
        data = " ".join(role if len(recipe.data) == 1 else f"{role}:{ratio:g}" for role, ratio in recipe.data)
        rows.append((recipe.name, stages, data, recipe.class_head, recipe.source))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths)), row[4]])
                     for row in rows)


def run_recipe(name: str, *, data: Mapping[str, str], out: str | Path, config_name: str = "paper",
               init: str | Path | None = None, scale: float = 1.0, resume: bool = True,
               options: Mapping[str, Any] | None = None, class_head: str | None = None,
               clip_features: Mapping[str, str] | None = None, **train_kwargs: Any) -> Path:
    """Run the recipe's stages in order into ``out/<stage>/`` and return the last stage's
    checkpoint.

    ``data`` maps each of the recipe's data roles to a data spec; ``init`` is a
    ``checkpoint.pt`` of an earlier run (required by fine-tuning recipes, optional for the
    others' first stage). With ``resume``, a finished stage is skipped and an unfinished one
    continues from its checkpoint, so re-running after a kill goes on where it stopped;
    without it every stage starts over. ``scale`` multiplies every stage's steps (at least
    1). The recipe's batch is what one optimiser step sees: under torchrun it is split among
    the processes and, with ``accumulate``, into micro-batches. ``options`` changes
    TrainOptions fields other than steps, batch size and stage (``workers``, ``cpu_threads``,
    ``accumulate``, ``checkpoint_every``, ...); ``train_kwargs`` go to
    :func:`reference_model.train.train` (``tokenizer_path``, ``backbone_path``, ``lm_path``,
    ``vision_path``, ``progress``, and the zero-shot head's ``class_embeddings`` or
    ``clip_model``). ``class_head`` (``zero_shot`` or ``linear``; default the recipe's):
    the zero-shot CLIP class head reads ``clip_features``, a CLIP feature file per data role.

    Example:
        >>> run_recipe("vidstg", data={"vidstg": "data/vidstg_train"}, out="runs/vidstg",
        ...            backbone_path="models/swin-base")                 # doctest: +SKIP
        PosixPath('runs/vidstg/caption/checkpoint.pt')
    """
    from reference_model.train import CHECKPOINT, TrainOptions, train

    recipe = _recipe(name)
    specs = _data_specs(recipe, data)
    if config_name not in CONFIGS or CONFIGS[config_name].official:
        trainable = sorted(n for n, c in CONFIGS.items() if not c.official)
        raise InputError(f"recipes train the configurations {trainable}, not {config_name!r}", field="config")
    if not scale > 0:
        raise InputError(f"the step scale must be positive, not {scale}", field="scale")
    options = dict(options or {})
    fixed = sorted(set(options) & set(_RECIPE_OPTIONS))
    if fixed:
        raise ValueError(f"the recipe sets {fixed}; options may change the other TrainOptions fields")
    batches = _per_process_batches(recipe, options.get("accumulate", 1))
    init_path, init_config = _init_checkpoint(recipe, init, config_name)
    init_head = None if init_config is None else init_config.class_head
    # A fine-tuning run keeps its --init checkpoint's head unless told otherwise.
    class_head = class_head or init_head or recipe.class_head
    if class_head not in ("zero_shot", "linear"):
        raise InputError(f"the class head is zero_shot or linear, not {class_head!r}", field="class_head")
    if init_head not in (None, class_head):
        raise InputError(f"the checkpoint has a {init_head} class head, not {class_head}: run the recipe "
                         f"with --class-head {init_head}", source=str(init_path), field="init")
    if init_config is not None and init_config.official:
        # Fine-tuning a released architecture: its own configuration, not --config.
        config, config_name = init_config, init_config.name
    else:
        config = get_config(config_name, dataset=recipe.dataset, class_head=class_head)
    features = _feature_specs(recipe, clip_features, class_head == "zero_shot")
    out = Path(out)
    # Under torchrun every process runs the recipe; the first one writes the run's records.
    first = int(os.environ.get("RANK", "0")) == 0
    _check_run_record(out, {"recipe": recipe.name, "config": config_name, "scale": scale,
                            "data": {role: str(spec) for role, spec in data.items()},
                            "init": None if init_path is None else str(init_path),
                            "class_head": class_head}, resume=resume, write=first)
    if not resume and first:
        # Starting over: no stage of an earlier run in this folder counts as finished.
        for stage in recipe.stages:
            (out / stage.kind / DONE).unlink(missing_ok=True)
    edge = training_short_edge(config, recipe.media)
    previous: Path | None = None
    for stage, batch_size in zip(recipe.stages, batches):
        folder = out / stage.kind
        checkpoint = folder / CHECKPOINT
        steps = scaled_steps(stage.steps, scale)
        if resume and (folder / DONE).is_file() and checkpoint.is_file():
            previous = checkpoint
            continue
        opts = TrainOptions(steps=steps, batch_size=batch_size, stage=stage.kind, augment=True,
                            short_edges=(edge,), max_size=config.max_size,
                            video_captions=stage.video_captions, **options)
        start = {"new": init_path, "previous": previous, "init": init_path}[stage.start]
        previous = train(config=config, data=specs, ratios=[ratio for _, ratio in recipe.data], out=folder,
                         opts=opts, resume=resume, init_checkpoint=None if start is None else str(start),
                         clip_features=features, **train_kwargs)
        if first:
            write_json_atomic({"recipe": recipe.name, "stage": stage.kind, "steps": steps,
                               "batch_size": stage.batch_size, "options": dataclasses.asdict(opts)},
                              folder / DONE, indent=1)
    return previous


def _per_process_batches(recipe: Recipe, accumulate: int) -> list[int]:
    """Each stage's batch per process and micro-batch: the paper's batch is what one
    optimiser step sees, which torchrun's processes and gradient accumulation share."""
    shares = int(os.environ.get("WORLD_SIZE", "1")) * accumulate
    clip_stages = [stage for stage in recipe.stages if not stage.video_captions]
    uneven = [stage.batch_size for stage in clip_stages if stage.batch_size % shares]
    if uneven:
        raise InputError(f"the batch of {uneven[0]} clips of recipe {recipe.name!r} cannot be split into "
                         f"{shares} equal parts (processes x accumulated micro-batches)", field="accumulate")
    # A video-level stage reads one video per process and micro-batch.
    return [1 if stage.video_captions else stage.batch_size // shares for stage in recipe.stages]


def _recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise InputError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return RECIPES[name]


def _data_specs(recipe: Recipe, data: Mapping[str, str]) -> list[str]:
    """The data specs in the recipe's role order; a missing or unexpected role is an error
    naming the roles the recipe takes."""
    roles = [role for role, _ in recipe.data]
    wanted = ", ".join(f"{role}=SPEC ({DATA_ROLES[role]})" for role in roles)
    missing = [role for role in roles if role not in data]
    if missing:
        raise InputError(f"recipe {recipe.name!r} needs --data {wanted}; missing: {', '.join(missing)}",
                         field="data")
    unexpected = sorted(set(data) - set(roles))
    if unexpected:
        raise InputError(f"recipe {recipe.name!r} takes --data {wanted}, not {', '.join(unexpected)}",
                         field="data")
    return [str(data[role]) for role in roles]


def _feature_specs(recipe: Recipe, clip_features: Mapping[str, str] | None, zero_shot: bool) -> list[str] | None:
    """The CLIP feature file of each data role, in the recipe's role order (zero-shot head)."""
    if not zero_shot:
        if clip_features:
            raise InputError("--clip-features: only the zero-shot class head reads CLIP features, not the "
                             "linear one", field="clip_features")
        return None
    roles = [role for role, _ in recipe.data]
    given = dict(clip_features or {})
    missing = [role for role in roles if role not in given]
    unexpected = sorted(set(given) - set(roles))
    if missing or unexpected:
        raise InputError(f"the zero-shot head reads CLIP image features: give --clip-features ROLE=FILE for each "
                         f"data role of {recipe.name!r} ({', '.join(roles)})"
                         + (f"; missing: {', '.join(missing)}" if missing else "")
                         + (f"; not a role: {', '.join(unexpected)}" if unexpected else ""), field="clip_features")
    return [str(given[role]) for role in roles]


def _init_checkpoint(recipe: Recipe, init: str | Path | None,
                     config_name: str) -> tuple[Path, ModelConfig] | tuple[None, None]:
    """The checkpoint behind ``init`` and its configuration: a ``convert-official`` folder,
    or a ``checkpoint.pt`` (a file, or a run folder holding one) of ``config_name`` or of an
    official configuration (fine-tuned here); (None, None) when no ``init`` is given."""
    if init is None:
        if recipe.needs_init:
            raise InputError(f"recipe {recipe.name!r} fine-tunes a trained model: give --init CHECKPOINT "
                             "(checkpoint.pt of a pretraining run, e.g. lviscoco-pretrain's caption stage)",
                             field="init")
        return None, None
    from reference_model.train import is_converted

    path = Path(init)
    if path.is_dir():
        if is_converted(path):
            try:
                converted = ModelConfig.from_dict(json.loads((path / "config.json").read_text(encoding="utf-8")))
            except (ValueError, TypeError) as exc:
                raise InputError(f"not a convert-official config.json: {exc}", source=str(path / "config.json"),
                                 field="init") from None
            return path, converted
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise InputError("no such checkpoint", source=str(path), field="init")
    import torch

    # Memory-mapped: only the configuration is read, not the (possibly OPT-2.7B-sized) weights.
    ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    trained_with = ckpt.get("config", {}).get("name") if isinstance(ckpt, dict) else None
    if trained_with is None:
        raise InputError("not a training checkpoint of this package (no 'config')", source=str(path), field="init")
    config = ModelConfig.from_dict(ckpt["config"])
    if trained_with != config_name and not config.official:
        raise InputError(f"the checkpoint was trained with config {trained_with!r}: give --config {trained_with}",
                         source=str(path), field="init")
    return path, config


def _check_run_record(out: Path, record: dict[str, Any], *, resume: bool, write: bool) -> None:
    """Store what ``out`` is run with (when ``write``); resuming a folder started with other
    settings (another recipe, scale or data) is an error, as its stages' schedules would not
    match."""
    path = out / RUN_RECORD
    if resume and path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in record if before.get(key) != record[key])
        if changed:
            raise InputError(f"this run folder was started with other {', '.join(changed)} "
                             f"({', '.join(f'{k}={before.get(k)!r}' for k in changed)}): use another --out",
                             source=str(out))
        return
    if write:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, path, indent=1)
