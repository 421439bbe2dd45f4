"""Fixtures of the caption-metric tests: an isolated user cache, stand-in CoreNLP jars and a
fake SPICE jar compiled from tests/data/captions/FakeSpice.java."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.captions.fake_spice import build_fake_spice_jar, stand_in_corenlp


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own user cache and no CoreNLP from the environment."""
    monkeypatch.setenv("BENCHMARK_CACHE_DIR", str(tmp_path / "user-cache"))
    monkeypatch.delenv("BENCHMARK_CORENLP_DIR", raising=False)


@pytest.fixture
def corenlp(tmp_path) -> Path:
    """A folder with two stand-in CoreNLP jars (SPICE only needs them on the classpath here)."""
    return stand_in_corenlp(tmp_path / "corenlp")


@pytest.fixture(scope="session")
def jdk() -> None:
    """Skip unless a JDK (javac and jar) is on PATH."""
    if shutil.which("javac") is None or shutil.which("jar") is None:
        pytest.skip("needs a JDK (javac, jar)")


@pytest.fixture(scope="session")
def fake_spice_jar(jdk, tmp_path_factory) -> Path:
    """A spice-1.0.jar stand-in with the real jar's entry points and deterministic scores."""
    return build_fake_spice_jar(tmp_path_factory.mktemp("fake-spice"))
