"""Fixtures for the reference-model tests: the official code's golden bundles.

The bundles (``../shared/golden/model``, about 80 MB, made by running the official
CaptionFormer code) are not copied into the repository. Tests that need them read them from
there, or from ``$DVOC_GOLDEN_MODEL_DIR``, and skip with that reason elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from reference_model.tiny_clip import save_tiny_clip

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread per test process: the suite runs under ``pytest -n 2`` on 2 cores,
    and two processes with several OpenMP threads each spin against each other (a 20 s golden
    run took minutes that way)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def golden_model_root() -> Path | None:
    """The folder holding ``vidstg_tempagg/``, ``lvvis/`` and the manifests, if present."""
    env = os.environ.get("DVOC_GOLDEN_MODEL_DIR")
    for candidate in ([Path(env)] if env else []) + [REPO.parent / "shared" / "golden" / "model"]:
        if (candidate / "README.md").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def golden_root() -> Path:
    root = golden_model_root()
    if root is None:
        pytest.skip("official-code golden bundles not found (../shared/golden/model or $DVOC_GOLDEN_MODEL_DIR)")
    return root


@pytest.fixture(scope="session", params=["vidstg_tempagg", "lvvis"])
def golden_bundle(request, golden_root: Path) -> Path:
    """One golden bundle folder (config.json, state_dict.pt, input.pt, outputs.pt, results.json)."""
    path = golden_root / request.param
    if not (path / "outputs.pt").is_file():
        pytest.skip(f"golden bundle {request.param} missing under {golden_root}")
    return path


@pytest.fixture(scope="session")
def make_tiny_clip():
    """:func:`save_tiny_clip`, for tests that need a local CLIP folder."""
    return save_tiny_clip


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """One tiny random CLIP folder (with tokenizer) shared by the session's tests."""
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))
