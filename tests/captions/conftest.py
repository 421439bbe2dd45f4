"""Fixtures of the caption-metric tests: an isolated user cache, stand-in CoreNLP jars and a
fake SPICE jar compiled from tests/data/captions/FakeSpice.java."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from benchmark.captions._java import pycocoevalcap_dir
from benchmark.captions.spice import CORENLP_JARS

FAKE_SOURCE = Path(__file__).parents[1] / "data" / "captions" / "FakeSpice.java"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own user cache and no CoreNLP from the environment."""
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("BENCHMARK_CORENLP_DIR", raising=False)


@pytest.fixture
def corenlp(tmp_path) -> Path:
    """A folder with two stand-in CoreNLP jars (SPICE only needs them on the classpath here)."""
    folder = tmp_path / "corenlp"
    folder.mkdir()
    for name in CORENLP_JARS:
        with zipfile.ZipFile(folder / name, "w") as zf:
            zf.writestr("README", "placeholder")
    return folder


@pytest.fixture(scope="session")
def jdk() -> None:
    """Skip unless a JDK (javac and jar) is on PATH."""
    if shutil.which("javac") is None or shutil.which("jar") is None:
        pytest.skip("needs a JDK (javac, jar)")


@pytest.fixture(scope="session")
def fake_spice_jar(jdk, tmp_path_factory) -> Path:
    """A spice-1.0.jar stand-in with the real jar's entry points and deterministic scores."""
    build = tmp_path_factory.mktemp("fake-spice")
    package = build / "src" / "edu" / "anu" / "spice"
    package.mkdir(parents=True)
    for chunk in FAKE_SOURCE.read_text().split("// ---- ")[1:]:
        name, body = chunk.split("\n", 1)
        (package / name.strip()).write_text(body)
    json_simple = pycocoevalcap_dir() / "spice" / "lib" / "json-simple-1.1.1.jar"
    classes = build / "classes"
    sources = [str(p) for p in package.glob("*.java")]
    subprocess.run(["javac", "-cp", str(json_simple), "-d", str(classes), *sources], check=True)
    jar = build / "spice-1.0.jar"
    subprocess.run(["jar", "cf", str(jar), "-C", str(classes), "."], check=True)
    return jar
