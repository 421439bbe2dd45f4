"""A tiny random CLIP saved as a local transformers folder, tokenizer included: what the tests
and the zero-shot benchmark use in place of openai/clip-vit-base-patch32, which cannot be
downloaded here. Its image features and class-name embeddings have CLIP's 512 dimensions.

Example:
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     sorted(p.name for p in save_tiny_clip(folder).iterdir())[:3]
    ['config.json', 'merges.txt', 'model.safetensors']
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch


def save_tiny_clip(path: str | Path, *, projection_dim: int = 512, seed: int = 0) -> Path:
    """A CLIPModel with one-layer 16-wide towers (32x32 images) and a character-level CLIP
    BPE tokenizer (no merges), written to ``path``; returns ``path``."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    symbols = string.ascii_lowercase + string.digits + ".,'-/"
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({s + "</w>": len(symbols) + i for i, s in enumerate(symbols)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    layer = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**layer, "vocab_size": len(vocab), "max_position_embeddings": 40,
                     "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]},
        vision_config={**layer, "image_size": 32, "patch_size": 8}, projection_dim=projection_dim)
    with torch.random.fork_rng():  # leaves the caller's random stream alone
        torch.manual_seed(seed)
        CLIPModel(config).save_pretrained(path)
    CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt")).save_pretrained(path)
    return path
