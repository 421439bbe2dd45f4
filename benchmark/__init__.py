"""Dense Video Object Captioning evaluation: CHOTA (DetA, AssA, CapA) and its neighbours.

Example:
    >>> from benchmark import chota
    >>> result = chota("gt.json", "pred.json", iou="box")      # doctest: +SKIP
    >>> result.to_dict()["CHOTA"]                               # doctest: +SKIP

Heavy parts are imported lazily so that ``import benchmark`` stays light and never needs
torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["chota", "Chota", "ChotaResult", "__version__"]


def __getattr__(name: str):
    # Lazy so that the CLI and the submodules do not pay for pandas/scipy imports they skip.
    if name in {"chota", "Chota", "ChotaResult"}:
        from benchmark import scoring

        return getattr(scoring, name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
