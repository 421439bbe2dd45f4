"""SPICE 1.0 per-pair F-scores (``All.f``) from the ``spice-1.0.jar`` shipped in
pycocoevalcap, with Stanford CoreNLP 3.6.0, in ONE java invocation for all pairs.

Unlike pycocoevalcap's ``Spice``, nothing is written into site-packages (temporary files
go to a temporary folder, SPICE's parse cache to the user cache) and nothing is downloaded
behind the user's back: the CoreNLP jars are looked up in, in order, the ``corenlp_dir``
argument, ``$BENCHMARK_CORENLP_DIR``, pycocoevalcap's ``spice/lib`` and
``$BENCHMARK_CACHE_DIR/corenlp`` (default ``~/.cache/dvoc-benchmark/corenlp``), where
``benchmark fetch-spice`` (:func:`fetch_spice`) puts them.

SPICE 1.0 pretty-prints its JSON output with the Nashorn JavaScript engine, which Java 15
removed, so on Java 15+ it fails after all the work. There we run a ten-line launcher
(compiled once with ``javac`` into the user cache) that calls the same ``SpiceScorer`` and
writes the same JSON without pretty-printing: the numbers are identical.

Example:
    >>> spice = SpiceScorer()                                             # doctest: +SKIP
    >>> spice.score(["a man rides a horse"], ["a man on a horse"])        # doctest: +SKIP
    array([0.6...])
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmark.captions._java import (
    jar_fingerprint,
    pycocoevalcap_dir,
    resolve_java,
    stderr_tail,
    user_cache_dir,
)
from benchmark.errors import CaptionScorerError, ToolMissingError

__all__ = ["SpiceScorer", "find_corenlp", "fetch_spice", "CORENLP_JARS", "CORENLP_URL"]

CORENLP_JARS = ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
CORENLP_URL = "https://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip"
SPICE_MAIN = "edu.anu.spice.SpiceScorer"
SPICE_FLAGS = ("-subset", "-silent")

_LAUNCHER_CLASS = "JsonOutputSpiceScorer"
_LAUNCHER_SOURCE = """\
package edu.anu.spice;

import java.io.FileWriter;
import java.io.Writer;

/** SPICE 1.0's SpiceScorer, writing its JSON output without the Nashorn pretty-printer. */
public class JsonOutputSpiceScorer {
    public static void main(String[] args) throws Exception {
        SpiceArguments parsed = new SpiceArguments(args);
        String out = parsed.outputPath;
        parsed.outputPath = null;
        SpiceScorer scorer = new SpiceScorer();
        scorer.scoreBatch(parsed);
        try (Writer writer = new FileWriter(out)) {
            writer.write(scorer.stats.toJSONString());
        }
    }
}
"""


def _corenlp_candidates(corenlp_dir: str | os.PathLike[str] | None) -> list[tuple[str, Path]]:
    places = []
    if corenlp_dir is not None:
        places.append(("corenlp_dir argument", Path(corenlp_dir)))
    if os.environ.get("BENCHMARK_CORENLP_DIR"):
        places.append(("$BENCHMARK_CORENLP_DIR", Path(os.environ["BENCHMARK_CORENLP_DIR"])))
    places.append(("pycocoevalcap", pycocoevalcap_dir() / "spice" / "lib"))
    places.append(("user cache", user_cache_dir() / "corenlp"))
    return places


def find_corenlp(corenlp_dir: str | os.PathLike[str] | None = None) -> Path:
    """The first folder holding both Stanford CoreNLP 3.6.0 jars, or ToolMissingError.

    Example:
        >>> find_corenlp("/nowhere")                              # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        benchmark.errors.ToolMissingError: SPICE needs the Stanford CoreNLP 3.6.0 jars ...
    """
    places = _corenlp_candidates(corenlp_dir)
    for _, folder in places:
        if all((folder / name).is_file() for name in CORENLP_JARS):
            return folder
    looked = "; ".join(f"{label}: {folder}" for label, folder in places)
    raise ToolMissingError(
        f"SPICE needs the Stanford CoreNLP 3.6.0 jars ({', '.join(CORENLP_JARS)}); looked in {looked}. "
        "Run `benchmark fetch-spice` (downloads about 390 MB) or set BENCHMARK_CORENLP_DIR "
        "to a folder holding them"
    )


@lru_cache(maxsize=None)
def java_major_version(java: str) -> int:
    """Major version of a Java runtime (8 for "1.8.0_101", 17 for "17.0.15")."""
    done = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        raise ToolMissingError(f"could not read the version of {java}: {stderr_tail(done.stderr)}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


class SpiceScorer:
    """Runs SPICE 1.0 once for a whole batch of (reference, candidate) pairs.

    ``spice_jar`` replaces pycocoevalcap's jar (tests use a fake one); ``use_launcher`` forces
    (True) or forbids (False) the Java 15+ launcher, None picks it from the Java version.
    """

    def __init__(
        self,
        *,
        corenlp_dir: str | os.PathLike[str] | None = None,
        java: str = "java",
        cache_dir: str | os.PathLike[str] | None = None,
        spice_jar: str | os.PathLike[str] | None = None,
        use_launcher: bool | None = None,
        max_memory: str = "8G",
    ) -> None:
        self.java = resolve_java(java, "SPICE")
        default_dir = pycocoevalcap_dir() / "spice"
        self.spice_jar = Path(spice_jar) if spice_jar is not None else default_dir / "spice-1.0.jar"
        if not self.spice_jar.is_file():
            raise ToolMissingError(f"SPICE jar not found at {self.spice_jar}: reinstall pycocoevalcap==1.2")
        self.corenlp_dir = find_corenlp(corenlp_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "spice"
        self.max_memory = max_memory
        if use_launcher is None:
            use_launcher = java_major_version(self.java) >= 15
        # Built now, so that a missing javac is reported before any scoring work.
        self.launcher_dir = (
            _compiled_launcher(_find_javac(self.java), str(self.spice_jar), str(user_cache_dir()))
            if use_launcher
            else None
        )
        corenlp = [self.corenlp_dir / name for name in CORENLP_JARS]
        libs = sorted(p for p in (default_dir / "lib").glob("*.jar") if p.name not in CORENLP_JARS)
        self.classpath = [self.spice_jar, *corenlp, *libs]
        corenlp_id = "+".join(f"{p.name}:{p.stat().st_size}" for p in corenlp)
        self.metric_id = f"spice-1.0:{jar_fingerprint(self.spice_jar)}:{corenlp_id}:{' '.join(SPICE_FLAGS)}"
        self._running: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop the SPICE runs in progress (their :meth:`score` calls then raise)."""
        with self._lock:
            for proc in self._running:
                proc.terminate()

    def command(self, input_path: Path, output_path: Path) -> list[str]:
        """The java command line that scores ``input_path`` into ``output_path``."""
        classpath = list(self.classpath)
        main = SPICE_MAIN
        if self.launcher_dir is not None:
            classpath.insert(0, self.launcher_dir)
            main = f"edu.anu.spice.{_LAUNCHER_CLASS}"
        # SPICE reads its input with the platform charset; we write UTF-8.
        jvm = [self.java, f"-Xmx{self.max_memory}", "-Dfile.encoding=UTF-8"]
        files = [str(input_path), "-out", str(output_path), "-cache", str(self.cache_dir)]
        return [*jvm, "-cp", os.pathsep.join(map(str, classpath)), main, *files, *SPICE_FLAGS]

    def score(self, refs: Sequence[str], cands: Sequence[str]) -> np.ndarray:
        """``All.f`` of each (refs[i], cands[i]) pair, NaN where SPICE gives none (as
        pycocoevalcap's ``float_convert`` does)."""
        if len(refs) != len(cands):
            raise ValueError(f"{len(refs)} references but {len(cands)} candidates")
        if not refs:
            return np.zeros(0)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="dvoc-spice-") as tmp:
            input_path, output_path = Path(tmp, "input.json"), Path(tmp, "output.json")
            items = [{"image_id": i, "test": c, "refs": [r]} for i, (r, c) in enumerate(zip(refs, cands))]
            input_path.write_text(json.dumps(items), encoding="utf-8")
            proc = subprocess.Popen(
                self.command(input_path, output_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            with self._lock:
                self._running.add(proc)
            try:
                _, stderr = proc.communicate()
            finally:
                with self._lock:
                    self._running.discard(proc)
            if proc.returncode != 0 or not output_path.is_file():
                err = stderr_tail(stderr.decode(errors="replace"))
                raise CaptionScorerError(
                    f"SPICE failed (exit status {proc.returncode}) on {len(refs)} pairs; "
                    f"its stderr: {err or '(empty)'}"
                )
            try:
                results = json.loads(output_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise CaptionScorerError(f"SPICE wrote unreadable JSON: {exc}") from exc
        return parse_spice_output(results, len(refs))


def _to_float(value: object) -> float:
    # pycocoevalcap's Spice.float_convert: anything float() refuses (null) becomes NaN.
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def parse_spice_output(results: object, n_pairs: int) -> np.ndarray:
    """Per-pair ``scores.All.f`` from SPICE's output list, ordered by ``image_id`` 0..n-1.

    Example:
        >>> out = [{"image_id": 1, "scores": {"All": {"f": None}}},
        ...        {"image_id": 0, "scores": {"All": {"f": 0.5}}}]
        >>> parse_spice_output(out, 2).tolist()
        [0.5, nan]
    """
    scores = np.full(n_pairs, np.nan)
    seen = np.zeros(n_pairs, dtype=bool)
    try:
        for item in results:  # type: ignore[union-attr]
            i = int(item["image_id"])
            scores[i] = _to_float(item["scores"]["All"]["f"])
            seen[i] = True
    except (TypeError, KeyError, IndexError, ValueError) as exc:
        raise CaptionScorerError(f"SPICE output is not in the expected shape: {exc!r}") from exc
    if not seen.all():
        raise CaptionScorerError(f"SPICE output lacks {int((~seen).sum())} of the {n_pairs} pairs")
    return scores


@lru_cache(maxsize=None)
def _compiled_launcher(javac: str, spice_jar: str, build_root: str) -> Path:
    key = hashlib.sha256((_LAUNCHER_SOURCE + jar_fingerprint(Path(spice_jar))).encode()).hexdigest()[:12]
    target = Path(build_root) / f"spice-launcher-{key}"
    if (target / "edu" / "anu" / "spice" / f"{_LAUNCHER_CLASS}.class").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Compile into a private folder and rename it into place: a concurrent process either
    # sees no launcher or a complete one.
    build = Path(tempfile.mkdtemp(prefix="spice-launcher-build-", dir=target.parent))
    source = build / f"{_LAUNCHER_CLASS}.java"
    source.write_text(_LAUNCHER_SOURCE, encoding="utf-8")
    classes = build / "classes"
    done = subprocess.run(
        [javac, "-cp", spice_jar, "-d", str(classes), str(source)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        shutil.rmtree(build, ignore_errors=True)
        raise CaptionScorerError(f"compiling the SPICE launcher failed: {stderr_tail(done.stderr)}")
    try:
        os.replace(classes, target)
    except OSError:  # another process won the race; its launcher is the same
        pass
    shutil.rmtree(build, ignore_errors=True)
    return target


def _find_javac(java: str) -> str:
    sibling = Path(java).resolve().parent / "javac"
    found = str(sibling) if sibling.is_file() else shutil.which("javac")
    if found is None:
        raise ToolMissingError(
            "SPICE 1.0 on Java 15+ needs `javac` (a JDK, e.g. `apt-get install default-jdk`) to build "
            "a small launcher once, because the jar's JSON output needs the Nashorn engine Java 15 "
            "removed; or use a Java 8-14 runtime via java=/path/to/java"
        )
    return found



def fetch_spice(dest: str | os.PathLike[str] | None = None, *, url: str = CORENLP_URL, progress: bool = True) -> Path:
    """Download Stanford CoreNLP 3.6.0 and keep only the two jars SPICE needs.

    ``dest`` defaults to ``$BENCHMARK_CACHE_DIR/corenlp`` (``~/.cache/dvoc-benchmark/corenlp``),
    where :class:`SpiceScorer` looks. Jars already there and readable are kept. Each jar is
    written to a temporary name, checked to open as a zip, then renamed: an interrupted
    download never leaves a half jar behind.

    Example:
        >>> fetch_spice()                                                 # doctest: +SKIP
        PosixPath('/home/me/.cache/dvoc-benchmark/corenlp')
    """
    from tqdm import tqdm

    dest_dir = Path(dest) if dest is not None else user_cache_dir() / "corenlp"
    if all(_is_zip(dest_dir / name) for name in CORENLP_JARS):
        return dest_dir
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=dest_dir) as tmp:
        archive = Path(tmp, "corenlp.zip")
        try:
            import urllib.request  # here: its import costs a cold run 20 ms

            with urllib.request.urlopen(url) as response, open(archive, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc="CoreNLP 3.6.0", disable=not progress) as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        bar.update(len(block))
        except OSError as exc:
            raise ToolMissingError(f"could not download {url}: {exc}") from exc
        try:
            with zipfile.ZipFile(archive) as zf:
                members = {Path(m).name: m for m in zf.namelist() if Path(m).name in CORENLP_JARS}
                missing = [name for name in CORENLP_JARS if name not in members]
                if missing:
                    raise ToolMissingError(f"{url} does not contain {', '.join(missing)}")
                for name in CORENLP_JARS:
                    part = Path(tmp, name)
                    with zf.open(members[name]) as src, open(part, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    if not _is_zip(part):
                        raise ToolMissingError(f"{name} from {url} is not a valid jar")
                    os.replace(part, dest_dir / name)
        except zipfile.BadZipFile as exc:
            raise ToolMissingError(f"{url} is not a valid zip archive: {exc}") from exc
    return dest_dir


def _is_zip(path: Path) -> bool:
    """True if ``path`` opens as a zip (a jar) with at least one entry."""
    try:
        with zipfile.ZipFile(path) as zf:
            return bool(zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
