"""The docstring examples of the reference model stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["config", "pixel_decoder", "video_decoder", "heads", "losses", "matcher", "tracker",
           "caption_head", "tokenizer", "model", "data", "postprocess", "official", "official_keys",
           "generation", "clip_features", "tiny_clip"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"reference_model.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
