"""Ground truth loaded in a background process while this one reads the predictions.

Before matching starts, a scorer run spends most of its time parsing and checking two JSON
files, one after the other; each step holds the GIL. With a second core, the ground truth
loads in a forked child while the parent reads the predictions
(:func:`benchmark.io.read_predictions`); the child sends back the loaded
:class:`~benchmark.io.GroundTruth` (pickled: about 0.1 s for a VidSTG-val-sized file), or
the error it raised, with the warnings it issued, which the parent issues again. The result
is the object :func:`benchmark.io.load_ground_truth` returns in this process.

Example:
    >>> pending = PendingGroundTruth({"images": [{"id": 7, "video_id": 1}], "annotations": []})
    >>> pending.result().num_videos
    1
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

from benchmark.errors import BenchmarkError
from benchmark.io import GroundTruth, Source, load_ground_truth

# Below these sizes the ground truth loads faster than a process starts and sends it back.
BACKGROUND_MIN_BYTES = 4 << 20
BACKGROUND_MIN_RECORDS = 20_000


def _worth_a_process(source: Source) -> bool:
    if sys.platform != "linux" or (os.cpu_count() or 1) < 2:
        return False
    if isinstance(source, dict):  # in memory: the child inherits it through fork
        annotations = source.get("annotations")
        return isinstance(annotations, list) and len(annotations) >= BACKGROUND_MIN_RECORDS
    if isinstance(source, (str, os.PathLike)):
        try:
            return Path(source).stat().st_size >= BACKGROUND_MIN_BYTES
        except OSError:
            return False  # the loader reports it, naming the file
    return False


def _load_and_send(send: Any, source: Source, require_captions: bool) -> None:
    """The child: load, then send ("ok", ground truth | "error", exception, traceback) and
    the warnings issued while loading."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the parent's filters decide when it issues them again
        try:
            message: tuple = ("ok", load_ground_truth(source, require_captions=require_captions), "")
        except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the parent
            message = ("error", exc, traceback.format_exc())
    issued = [(str(w.message), w.category) for w in caught]
    try:
        send.send((*message, issued))
    except Exception:  # noqa: BLE001 - an exception that does not pickle: send its text
        send.send(("error", RuntimeError(message[2] or "the ground truth did not pickle"), "", issued))
    send.close()


class PendingGroundTruth:
    """Ground truth being loaded: in a forked child when ``background`` is true, the input
    is large enough and the machine has a second core (on Linux), otherwise in this process
    at :meth:`result`.

    :meth:`result` returns what ``load_ground_truth(source, require_captions=...)`` returns,
    raises what it raises and issues the warnings it issues. :meth:`close` stops the child
    (a run that fails elsewhere must not leave it loading).
    """

    def __init__(self, source: Source, *, require_captions: bool = True,
                 background: bool = True) -> None:
        self.source = source
        self.require_captions = require_captions
        self._value: GroundTruth | None = None
        self._process = None
        self._receive = None
        if background and _worth_a_process(source):
            context = multiprocessing.get_context("fork")
            self._receive, send = context.Pipe(duplex=False)
            self._process = context.Process(target=_load_and_send, name="load-ground-truth",
                                             args=(send, source, require_captions), daemon=True)
            self._process.start()
            send.close()  # the child holds the only sending end: its exit means end of file

    @property
    def in_background(self) -> bool:
        """Whether a child process loads it."""
        return self._process is not None

    def result(self) -> GroundTruth:
        """The loaded ground truth (waits for the child); raises the loader's error."""
        if self._value is not None:
            return self._value
        if self._process is None:
            self._value = load_ground_truth(self.source, require_captions=self.require_captions)
            return self._value
        try:
            status, value, child_traceback, issued = self._receive.recv()
        except EOFError:  # the child died without a word (killed, out of memory)
            process = self._process
            self.close()
            warnings.warn(f"the process loading the ground truth ended with exit code "
                          f"{process.exitcode} and no result; loading it here instead",
                          RuntimeWarning, stacklevel=2)
            return self.result()
        self.close()
        for text, category in issued:
            warnings.warn(text, category, stacklevel=2)
        if status == "error":
            if isinstance(value, BenchmarkError):
                raise value
            # A bug, not bad input: show where it happened in the child.
            raise value from RuntimeError(f"while loading the ground truth in a background "
                                          f"process:\n{child_traceback}")
        self._value = value
        return value

    def close(self) -> None:
        """Stop the child if it is still loading (a later :meth:`result` loads here)."""
        if self._receive is not None:
            self._receive.close()
            self._receive = None
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
            self._process = None
