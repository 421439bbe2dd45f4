"""The bundled sample: a small synthetic DVOC dataset and three submissions of known quality.

The files are shipped as package data and regenerated bit-identically by
``benchmark sample make --out benchmark/sample_data`` (see :func:`benchmark.synthetic.write_sample`).

Example:
    >>> from benchmark.sample_data import sample_paths
    >>> paths = sample_paths()
    >>> paths.gt.name, sorted(paths.submissions)
    ('gt.json', ['fair', 'good', 'poor'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Submission qualities, best first: they score in this order.
SAMPLE_QUALITIES: tuple[str, ...] = ("good", "fair", "poor")


@dataclass(frozen=True)
class SamplePaths:
    """Where the bundled sample lives: the ground truth and one submission per quality."""

    gt: Path
    submissions: dict[str, Path]


def sample_paths() -> SamplePaths:
    """Paths of the bundled sample files (they work after ``pip install`` too).

    Example:
        >>> sample_paths().submissions["good"].name
        'good.json'
    """
    root = Path(__file__).resolve().parent
    return SamplePaths(
        gt=root / "gt.json",
        submissions={q: root / "submissions" / f"{q}.json" for q in SAMPLE_QUALITIES},
    )
