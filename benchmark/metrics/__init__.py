"""The neighbouring benchmarks' metrics, one module each.

- :mod:`benchmark.metrics.track_map`: YouTube-VIS / LV-VIS track mAP (``track_map``).
- :mod:`benchmark.metrics.lgvis`: ViCaS LG-VIS mAP (``lgvis_map``).
- :mod:`benchmark.metrics.jf`: DAVIS J&F for masklets (``j_and_f``).
- :mod:`benchmark.metrics.vocap`: VoCap multi-reference object captioning (``vocap``).
- :mod:`benchmark.metrics.bensmot`: BenSMOT instance-caption CIDEr (``bensmot_captions``).
- :mod:`benchmark.metrics.caption_accuracy`: ViCaS caption accuracy with an LLM judge.
- :mod:`benchmark.metrics.tracks`: both input layouts read as whole-video tracks.

None of them imports torch; the transformers and Gemini judges import their libraries on use.

Example:
    >>> from benchmark.metrics import track_map                 # doctest: +SKIP
    >>> track_map("lvvis_val.json", "results.json").summary["AP"]  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "track_map": "track_map", "lvvis_category_groups": "track_map",
    "lgvis_map": "lgvis", "j_and_f": "jf", "vocap": "vocap",
    "multi_reference_cider": "vocap", "bensmot_captions": "bensmot", "caption_accuracy": "caption_accuracy",
    "load_tracks": "tracks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    # Lazy: the CLI imports only the metric it runs.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"benchmark.metrics.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'benchmark.metrics' has no attribute {name!r}")
