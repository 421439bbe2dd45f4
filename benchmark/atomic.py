"""Atomic file writes: a reader (or a crash) never sees half a file, and an existing file is
only ever replaced by a complete one.

Every output of the package (scores, CSVs, converted ground truth, plots, the leaderboard
site) goes through :func:`atomic_write_bytes`: the data goes to a temporary file in the same
folder (so the final rename never crosses file systems), is flushed to disk, made readable
(0o644, as a static web server needs) and renamed over the target.

Example:
    >>> import pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "sub" / "scores.json"
    >>> write_json_atomic({"HOTA": 0.5}, out).read_text()
    '{"HOTA": 0.5}'
    >>> atomic_write_text(out, "replaced\\n").read_text()
    'replaced\\n'
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any, BinaryIO

from benchmark.errors import OutputError

__all__ = ["atomic_save_figure", "atomic_stream", "atomic_write_bytes", "atomic_write_text",
           "check_output_path", "is_stdout", "write_json_atomic", "write_text_output"]

#: The output path that means standard output (``--json -``, ``--csv -``).
STDOUT = "-"


def is_stdout(path: str | os.PathLike[str] | None) -> bool:
    """Whether an output option names standard output (``-``)."""
    return path is not None and os.fspath(path) == STDOUT


def write_text_output(path: str | os.PathLike[str], text: str) -> str | Path:
    """Write ``text`` to standard output when ``path`` is ``-``, else with
    :func:`atomic_write_text`; returns where it went.

    Example:
        >>> write_text_output("-", "a,b\\n")
        a,b
        '-'
    """
    if is_stdout(path):
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return STDOUT
    return atomic_write_text(path, text)



def check_output_path(path: str | os.PathLike[str]) -> Path:
    """Refuse to replace anything but a regular file: a rename over a symbolic link would
    replace the link itself (``--json /dev/stdout`` became a regular file), and a device, a
    pipe or a folder is not a file to replace. A missing path is fine.

    Raises:
        OutputError: naming the path and what it is.

    Example:
        >>> import pathlib, tempfile
        >>> check_output_path(pathlib.Path(tempfile.mkdtemp()) / "new.json").name
        'new.json'
        >>> check_output_path("/dev/null")
        Traceback (most recent call last):
        ...
        benchmark.errors.OutputError: /dev/null: is a character device, not a regular file; refusing to replace it (give another path, or '-' for standard output where the option allows it)
    """
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return path
    if stat.S_ISREG(mode):
        return path
    kind = ("a symbolic link" if stat.S_ISLNK(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    raise OutputError(f"{path}: is {kind}, not a regular file; refusing to replace it (give "
                      "another path, or '-' for standard output where the option allows it)")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` (parent folders created) through a temporary file and a
    rename; on any failure the temporary file is removed and the old ``path`` is untouched.
    Only a regular file is ever replaced: a symbolic link, a device, a pipe or a folder at
    ``path`` raises :class:`~benchmark.errors.OutputError` (see :func:`check_output_path`).

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.bin"
        >>> atomic_write_bytes(out, b"hello").read_bytes()
        b'hello'
        >>> oct(out.stat().st_mode & 0o777)
        '0o644'
    """
    return atomic_stream(path, lambda handle: handle.write(data))


def atomic_stream(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any]) -> Path:
    """:func:`atomic_write_bytes` for data too large to hold twice: ``write(handle)`` writes
    straight into the temporary file (e.g. ``lambda f: torch.save(state, f)``).

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "b.bin"
        >>> atomic_stream(out, lambda f: f.write(b"streamed")).read_bytes()
        b'streamed'
    """
    path = check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0o600; outputs are meant to be shared (served, committed, mounted).
        os.chmod(tmp, 0o644)
        check_output_path(path)  # again: something may have appeared there while we wrote
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text (newlines written as given).

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
        >>> atomic_write_text(out, "a,b\\n1,2\\n").read_text()
        'a,b\\n1,2\\n'
    """
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json_atomic(data: Any, path: str | os.PathLike[str], *, indent: int | None = None) -> Path:
    """Write ``data`` as UTF-8 JSON (non-ASCII kept as is) with :func:`atomic_write_bytes`.

    The document is serialised before anything touches the disk, so a value that is not
    JSON-serialisable raises without creating or changing any file.

    Example:
        >>> import pathlib, tempfile
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "gt.json"
        >>> write_json_atomic({"caption": "un café"}, out).read_text(encoding="utf-8")
        '{"caption": "un café"}'
    """
    return atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=indent))


def atomic_save_figure(path: str | os.PathLike[str], figure: Any, *, dpi: int = 120) -> Path:
    """Render a matplotlib ``figure`` in memory (format from the file suffix, PNG without
    one) and write it with :func:`atomic_write_bytes`; the caller still closes the figure.

    Example:
        >>> import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
        >>> import pathlib, tempfile
        >>> fig, ax = plt.subplots(); _ = ax.plot([0, 1], [0, 1])
        >>> out = atomic_save_figure(pathlib.Path(tempfile.mkdtemp()) / "line.png", fig)
        >>> plt.close(fig); out.read_bytes()[:4]
        b'\\x89PNG'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
    return atomic_write_bytes(path, buffer.getvalue())
