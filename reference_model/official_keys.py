"""Renaming the official CaptionFormer state dict onto ours, one table of rules per module.

A rule is ``(regex, target)`` matched against the official key with its prefix removed:
``target`` is a ``re.Match.expand`` template of our key, ``None`` to consume the entry without
loading it (a buffer we recompute), or a template holding ``{}`` to split a fused q/k/v
projection into three of ours. Every module that loads official weights declares its rules;
:func:`map_official` applies them and refuses, listing them all, any official key left over,
any key of ours not produced and any shape that differs, so a checkpoint either loads
completely or says exactly what does not fit.

Example:
    >>> import torch
    >>> rules = {"head.": ("proj.", [(r"linear\\.(weight|bias)", r"\\1")])}
    >>> ours = {"proj.weight": torch.zeros(2, 3), "proj.bias": torch.zeros(2)}
    >>> sorted(map_official({"head.linear.weight": torch.ones(2, 3), "head.linear.bias": torch.ones(2),
    ...                      "other.x": torch.ones(1)}, rules, ours, what="head"))
    ['proj.bias', 'proj.weight']
"""

from __future__ import annotations

import re

import torch

Rule = tuple[str, "str | None"]


def _rename(key: str, value: torch.Tensor, rules: list[Rule]) -> dict[str, torch.Tensor] | None:
    """Our name(s) and tensor(s) for one official entry; None when no rule matches."""
    for pattern, target in rules:
        match = re.fullmatch(pattern, key)
        if match is None:
            continue
        if target is None:
            return {}
        name = match.expand(target)
        if "{}" in name:
            # A fused projection stacks q, k and v along the output dimension.
            return {name.format(part): t for part, t in zip("qkv", value.chunk(3))}
        return {name: value}
    return None


def map_official(official: dict[str, torch.Tensor], prefixes: dict[str, tuple[str, list[Rule]]],
                 ours: dict[str, torch.Tensor], *, what: str) -> dict[str, torch.Tensor]:
    """Our state dict (keys of ``ours``) from the official entries under ``prefixes``.

    ``prefixes`` maps an official key prefix to (our key prefix, rules); official keys under
    no prefix are ignored (another module takes them). Raises ValueError naming ``what`` and
    listing every official key not used, every key of ours not produced, every shape mismatch.
    """
    mapped: dict[str, torch.Tensor] = {}
    unused = []
    for key, value in official.items():
        prefix = next((p for p in prefixes if key.startswith(p)), None)
        if prefix is None:
            continue
        our_prefix, rules = prefixes[prefix]
        renamed = _rename(key[len(prefix):], value, rules)
        renamed = None if renamed is None else {our_prefix + k: v for k, v in renamed.items()}
        if renamed is None or any(k not in ours for k in renamed):
            unused.append(key)
            continue
        mapped.update(renamed)
    missing = sorted(set(ours) - set(mapped))
    shapes = [f"{k}: official {tuple(v.shape)}, ours {tuple(ours[k].shape)}"
              for k, v in mapped.items() if v.shape != ours[k].shape]
    if unused or missing or shapes:
        raise ValueError(
            f"official {what} weights do not fit:\n"
            f"official keys not used ({len(unused)}): {unused}\n"
            f"our keys not produced ({len(missing)}): {missing}\n"
            f"shape mismatches ({len(shapes)}): {shapes}"
        )
    return mapped
