"""Caption tokenizer: a pretrained one from a local folder, or a word-level one trained on the
training captions (``tokenizers`` library) when none is given.

The word-level tokenizer splits on whitespace only, so decoding joins the words back with
single spaces and reproduces captions exactly (CHOTA scores raw strings: "left." and "left ."
differ).

Example:
    >>> tok = train_word_tokenizer(["a red circle moving left", "a blue square"])
    >>> ids = tok("a blue circle")["input_ids"]
    >>> tok.decode(ids)
    'a blue circle'
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from transformers import PreTrainedTokenizerFast

SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def train_word_tokenizer(captions: Iterable[str], *, min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """A word-level tokenizer whose vocabulary is the words of ``captions``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    trainer = trainers.WordLevelTrainer(min_frequency=min_frequency, special_tokens=list(SPECIALS.values()))
    tok.train_from_iterator((c for c in captions if c), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved with ``save_pretrained`` from a local folder (never downloads)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
