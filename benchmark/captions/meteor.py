"""METEOR 1.5 per-pair scores from the ``meteor-1.5.jar`` shipped in pycocoevalcap, exactly as
pycocoevalcap's ``Meteor`` computes them, with one JVM for a whole run.

The JVM is started when the scorer is built and not waited for: loading the English
paraphrase table takes about 8 s, which then overlaps with whatever the caller does before
its first :meth:`MeteorScorer.score`.

Example:
    >>> with MeteorScorer() as meteor:                                    # doctest: +SKIP
    ...     meteor.score(["a man rides a horse"], ["a man is riding a horse"])
    array([0.56...])
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmark.captions._java import (
    JAVA_INSTALL_HINT,
    jar_fingerprint,
    pycocoevalcap_dir,
    resolve_java,
    stderr_tail,
)
from benchmark.errors import CaptionScorerError, ToolMissingError

__all__ = ["MeteorScorer", "has_line_break", "replace_line_breaks", "meteor_metric_id", "default_meteor_jar"]

METEOR_FLAGS = ("-", "-", "-stdio", "-l", "en", "-norm")
# Lines per write/read round: small enough that the JVM's answers (about 150 bytes a line)
# never fill the stdout pipe while we are still writing, which would deadlock.
_CHUNK = 100

_STATS = re.compile(r"[0-9.eE+\- ]+")
_LINE_BREAKS = str.maketrans({"\n": " ", "\r": " "})


def has_line_break(caption: str) -> bool:
    """True if the caption holds a newline or carriage return (METEOR's stdio protocol is
    line-based, so these are replaced with spaces; callers should warn the user).

    Example:
        >>> has_line_break("a dog\\nruns"), has_line_break("a dog runs")
        (True, False)
    """
    return "\n" in caption or "\r" in caption


def replace_line_breaks(caption: str) -> str:
    """The caption with each newline / carriage return replaced by a space.

    Example:
        >>> replace_line_breaks("a dog\\r\\nruns")
        'a dog  runs'
    """
    return caption.translate(_LINE_BREAKS)


def default_meteor_jar() -> Path:
    """``meteor-1.5.jar`` inside the installed pycocoevalcap."""
    return pycocoevalcap_dir() / "meteor" / "meteor-1.5.jar"


def meteor_metric_id(jar: Path) -> str:
    """Cache key of METEOR's scores: the jar's content hash and the flags.

    Example:
        >>> meteor_metric_id(default_meteor_jar())                       # doctest: +ELLIPSIS
        'meteor-1.5:...:-stdio -l en -norm'
    """
    return f"meteor-1.5:{jar_fingerprint(jar)}:{' '.join(METEOR_FLAGS[2:])}"


def _score_line(ref: str, cand: str) -> bytes:
    # pycocoevalcap cleans only the hypothesis, and collapses double spaces in one pass.
    hyp = replace_line_breaks(cand).replace("|||", "").replace("  ", " ")
    return f"SCORE ||| {replace_line_breaks(ref)} ||| {hyp}\n".encode()


def _stop(proc: subprocess.Popen) -> None:
    """End the JVM (used by close() and at interpreter exit, so no JVM outlives us)."""
    if proc.poll() is None:
        try:
            proc.stdin.close()
        except OSError:
            pass
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None and not stream.closed:
            stream.close()


class MeteorScorer:
    """One METEOR 1.5 JVM (``java -jar -Xmx2G meteor-1.5.jar - - -stdio -l en -norm``).

    Thread-safe; use as a context manager or call :meth:`close`.

    Example:
        >>> MeteorScorer(java="/no/such/java")
        Traceback (most recent call last):
        ...
        benchmark.errors.ToolMissingError: METEOR needs Java, but '/no/such/java' was not found: ...
    """

    def __init__(self, *, java: str = "java", jar: str | Path | None = None) -> None:
        java_path = resolve_java(java, "METEOR")
        self.jar = Path(jar) if jar is not None else default_meteor_jar()
        if not self.jar.is_file():
            raise ToolMissingError(f"METEOR jar not found at {self.jar}: reinstall pycocoevalcap==1.2")
        self.metric_id = meteor_metric_id(self.jar)
        self._stderr = tempfile.TemporaryFile()
        # cwd = the jar's folder: METEOR finds data/paraphrase-en.gz relative to it.
        try:
            self._proc = subprocess.Popen(
                [java_path, "-jar", "-Xmx2G", self.jar.name, *METEOR_FLAGS],
                cwd=self.jar.parent,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
            )
        except OSError as exc:
            self._stderr.close()
            raise ToolMissingError(f"METEOR could not start {java_path}: {exc}; {JAVA_INSTALL_HINT}") from exc
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _stop, self._proc)

    def score(self, refs: Sequence[str], cands: Sequence[str]) -> np.ndarray:
        """METEOR of each (refs[i], cands[i]) pair: the per-item scores of pycocoevalcap's
        ``Meteor().compute_score({i: [refs[i]]}, {i: [cands[i]]})``.

        Blocks until the JVM is ready on the first call.
        """
        if len(refs) != len(cands):
            raise ValueError(f"{len(refs)} references but {len(cands)} candidates")
        scores = np.empty(len(refs))
        with self._lock:
            if not self._finalizer.alive:
                raise RuntimeError("MeteorScorer is closed")
            for start in range(0, len(refs), _CHUNK):
                stop = min(start + _CHUNK, len(refs))
                stats = self._exchange(
                    b"".join(_score_line(r, c) for r, c in zip(refs[start:stop], cands[start:stop])),
                    stop - start,
                )
                bad = next((s for s in stats if not _STATS.fullmatch(s)), None)
                if bad is not None:
                    raise self._failure(f"the METEOR JVM answered {bad!r} instead of statistics")
                # EVAL answers one score per segment, then the aggregate, which we skip.
                eval_line = ("EVAL ||| " + " ||| ".join(stats) + "\n").encode()
                answer = self._exchange(eval_line, stop - start + 1)
                scores[start:stop] = [self._to_float(a) for a in answer[:-1]]
        return scores

    def _exchange(self, payload: bytes, n_lines: int) -> list[str]:
        """Write the request lines and read ``n_lines`` answer lines."""
        try:
            self._proc.stdin.write(payload)
            self._proc.stdin.flush()
            lines = []
            for _ in range(n_lines):
                line = self._proc.stdout.readline()
                if not line:
                    raise EOFError
                lines.append(line.decode().strip())
        except (OSError, EOFError, ValueError) as exc:
            raise self._failure("the METEOR JVM stopped answering") from exc
        return lines

    def _to_float(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise self._failure(f"the METEOR JVM answered {text!r} instead of a score") from None

    def _failure(self, what: str) -> CaptionScorerError:
        try:  # a JVM that just closed its stdout is usually exiting: get its status
            code: int | None = self._proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        self._stderr.seek(0)
        err = stderr_tail(self._stderr.read().decode(errors="replace"))
        status = f" (exit status {code})" if code is not None else ""
        return CaptionScorerError(f"{what}{status}; its stderr: {err or '(empty)'}")

    def close(self) -> None:
        """Stop the JVM; safe to call twice."""
        with self._lock:
            self._finalizer()
            self._stderr.close()

    def __enter__(self) -> MeteorScorer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
