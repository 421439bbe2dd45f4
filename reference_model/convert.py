"""``python -m reference_model convert-official CKPT --config NAME --out DIR``: turn a released
CaptionFormer checkpoint into ours, and load converted checkpoints.

The released ``.pth`` files are detectron2 checkpoints (``{"model": state_dict, ...}``, or a
bare state dict) with the official key names. Every key is renamed onto our modules
(``MaskCaptioner.official_state_dict``); a key that maps nowhere, or a key of ours that no
official key fills, is an error that lists them all. The frozen parts a checkpoint may leave
out load from files the user names: EVA ViT-g (LAVIS ``eva_vit_g.pth``, ``--eva``) and
OPT-2.7B (a local transformers ``facebook/opt-2.7b`` folder, ``--opt``); they are only needed
when the checkpoint lacks ``captioning_head.visual_encoder.*`` or ``captioning_head.opt_model.*``.

``DIR`` receives ``config.json`` (our configuration) and ``model.pt`` (our state dict, dtypes
as in the checkpoint: OPT in float16), each written atomically; an existing ``DIR/model.pt``
is replaced only with ``overwrite=True``.

Example:
    $ python -m reference_model convert-official models/ckpt_vidstg_tempagg.pth \\
          --config vidstg-tempagg --out converted/vidstg-tempagg
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from benchmark.atomic import atomic_stream, check_output_path, write_json_atomic
from benchmark.errors import InputError
from reference_model.config import ModelConfig, get_config
from reference_model.model import MaskCaptioner

# Caption-head parts a checkpoint may leave out, by the official prefix that holds them.
EXTERNAL_PREFIXES = {"eva": "captioning_head.visual_encoder.", "opt": "captioning_head.opt_model."}


def read_official_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    """The official state dict of a released checkpoint (tensors only).

    Read with ``weights_only=True`` (no code runs while loading); a checkpoint that stores
    other Python objects needs ``trust_pickle=True``, for files from a source you trust.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such checkpoint file", source=str(path))
    try:
        data = torch.load(path, map_location="cpu", weights_only=not trust_pickle, mmap=True)
    except pickle.UnpicklingError as exc:
        raise InputError(f"the checkpoint holds more than tensors ({str(exc).splitlines()[0]}); "
                         "pass --trust-pickle if you trust its source", source=str(path)) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise InputError(f"not a readable torch checkpoint: {exc}", source=str(path)) from None
    state = data.get("model", data) if isinstance(data, dict) else None
    if not isinstance(state, dict) or not state:
        raise InputError("expected a state dict or a detectron2 checkpoint {'model': state dict}", source=str(path))
    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise InputError(f"entries that are not named tensors: {bad[:5]}", source=str(path), field="model")
    return state


def convert_official(checkpoint: str | Path, *, config: str | ModelConfig, out: str | Path,
                     eva: str | Path | None = None, opt: str | Path | None = None,
                     trust_pickle: bool = False, overwrite: bool = False) -> Path:
    """Convert a released checkpoint; returns ``out/model.pt``."""
    config = get_config(config) if isinstance(config, str) else config
    if not config.official:
        raise ValueError(f"config {config.name!r} is not an official configuration")
    out = Path(out)
    target = out / "model.pt"
    for path in (target, out / "config.json"):
        check_output_path(path)  # before the minutes of conversion, not at the final rename
    if target.exists() and not overwrite:
        raise InputError("already exists (pass --overwrite to replace it)", source=str(target))
    official = read_official_checkpoint(checkpoint, trust_pickle=trust_pickle)
    sources = {"eva": eva, "opt": opt}
    external = tuple(part for part, prefix in EXTERNAL_PREFIXES.items()
                     if not any(k.startswith(prefix) for k in official))
    for part in external:
        if sources[part] is None:
            flag = "--eva eva_vit_g.pth" if part == "eva" else "--opt FOLDER (facebook/opt-2.7b)"
            raise InputError(f"the checkpoint has no {EXTERNAL_PREFIXES[part]}* weights: give them with {flag}",
                             source=str(checkpoint))
    model = MaskCaptioner(config=config, empty_caption_head=True)
    state = model.official_state_dict(official, external=external)
    model.load_state_dict(state, strict=False, assign=True)
    if "eva" in external:
        model.caption_head.load_eva_vit_g(sources["eva"])
    if "opt" in external:
        model.caption_head.load_opt(sources["opt"], dtype=torch.float16)
    empty = [name for name, tensor in model.state_dict().items() if tensor.is_meta]
    if empty:
        raise ValueError(f"weights still missing after conversion: {empty}")
    write_json_atomic(config.to_dict(), out / "config.json", indent=1)
    return atomic_stream(target, lambda handle: torch.save(model.state_dict(), handle))


def load_converted(folder: str | Path, *, device: str | torch.device = "cpu", **overrides: Any) -> MaskCaptioner:
    """A converted checkpoint (``config.json`` + ``model.pt``) as an eval-mode model on
    ``device``. On CPU everything runs in float32 (the golden bundles' precision); on CUDA
    the language model stays in float16, as the official evaluation loads it. ``overrides``
    change inference settings of the configuration (e.g. ``caption_mode="middle"``)."""
    folder = Path(folder)
    for name in ("config.json", "model.pt"):
        if not (folder / name).is_file():
            raise InputError(f"not a converted checkpoint folder (no {name}); run convert-official first",
                             source=str(folder))
    config = ModelConfig.from_dict({**json.loads((folder / "config.json").read_text()), **overrides})
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True, mmap=True)
    model = MaskCaptioner(config=config, empty_caption_head=True)
    model.load_state_dict(state, assign=True)
    device = torch.device(device)
    if device.type == "cpu":
        model.float()
    else:
        lm = model.caption_head.lm
        model.float()
        lm.half()
    return model.to(device).eval()
