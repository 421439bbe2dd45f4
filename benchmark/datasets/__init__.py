"""Converters from each source dataset's own files to the benchmark's COCO-video ground truth.

One module per source (``vidstg``, ``vln``, ``bensmot``, ``lvvis`` for LV-VIS and LVIS, ``sav``,
``vicas``), ``predictions`` for per-track result files, and ``common`` for what they share.
Every converter returns the ground truth as a dict; ``write_json_atomic`` stores it.

Example:
    >>> from benchmark.datasets import convert_bensmot, write_json_atomic
    >>> gt = convert_bensmot(root="BenSMOT", split="test",
    ...                      captions="instance_caption.json")  # doctest: +SKIP
    >>> write_json_atomic(gt, "bensmot_test_gt.json")  # doctest: +SKIP
"""

from benchmark.datasets.bensmot import convert_bensmot
from benchmark.atomic import write_json_atomic
from benchmark.datasets.lvvis import convert_lvis, convert_lvvis
from benchmark.datasets.predictions import convert_predictions
from benchmark.datasets.sav import convert_sav
from benchmark.datasets.vicas import convert_vicas
from benchmark.datasets.vidstg import convert_vidstg
from benchmark.datasets.vln import convert_vln

__all__ = [
    "convert_bensmot",
    "convert_lvis",
    "convert_lvvis",
    "convert_predictions",
    "convert_sav",
    "convert_vicas",
    "convert_vidstg",
    "convert_vln",
    "write_json_atomic",
]
