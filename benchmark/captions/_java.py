"""What the METEOR and SPICE wrappers share: where pycocoevalcap keeps its jars, the user
cache folder, a fingerprint of a jar for cache keys, and the error raised when a JVM fails.

Example:
    >>> pycocoevalcap_dir().joinpath("meteor", "meteor-1.5.jar").is_file()
    True
"""

from __future__ import annotations

import hashlib
import os
import shutil
from functools import lru_cache
from pathlib import Path

from benchmark.errors import ToolMissingError

JAVA_INSTALL_HINT = (
    "install a Java runtime (e.g. `apt-get install default-jre`, `brew install openjdk`, "
    "or `conda install -c conda-forge openjdk`) or pass java=/path/to/java"
)


def pycocoevalcap_dir() -> Path:
    """Folder of the installed pycocoevalcap package (it ships the METEOR and SPICE jars)."""
    try:
        import pycocoevalcap
    except ImportError as exc:  # a core dependency, but say what is missing if it is not there
        raise ToolMissingError(
            "pycocoevalcap is not installed (it ships the METEOR and SPICE jars): "
            "pip install pycocoevalcap==1.2"
        ) from exc
    # pycocoevalcap is a namespace package: no __file__, but a __path__.
    return Path(next(iter(pycocoevalcap.__path__)))


def user_cache_dir() -> Path:
    """``$BENCHMARK_CACHE_DIR`` or ``~/.cache/dvoc-benchmark`` (not created here)."""
    env = os.environ.get("BENCHMARK_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dvoc-benchmark"


def resolve_java(java: str, metric: str) -> str:
    """Full path of the ``java`` executable, or ToolMissingError naming the metric."""
    found = shutil.which(java)
    if found is None:
        raise ToolMissingError(f"{metric} needs Java, but {java!r} was not found: {JAVA_INSTALL_HINT}")
    return found


def jar_fingerprint(path: Path) -> str:
    """Short content hash of a jar, so that cached scores change when the jar does.

    Memoised by (path, size, mtime): hashing the 20 MB SPICE jar once per process is enough.
    """
    stat = path.stat()
    return _fingerprint(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=None)
def _fingerprint(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def stderr_tail(text: str, limit: int = 2000) -> str:
    """The end of a JVM's stderr, where its exception is, trimmed for an error message."""
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]
