"""Pausing Python's cyclic garbage collector around work that builds many containers and
no reference cycles (parsed JSON, METEOR's per-caption tables).

Every container created counts towards the next collection, and a collection scans every
container alive: parsing a 70 MB prediction file triggers enough of them to double its time.

Example:
    >>> import gc
    >>> with gc_paused():
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
"""

from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def gc_paused():
    """Pause the collector for the ``with`` block (or the decorated function). Objects the
    block leaves in cycles are collected after it, by the next collection. Nests: only the
    outermost pause re-enables the collector, and one that was off stays off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
