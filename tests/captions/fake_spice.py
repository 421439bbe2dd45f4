"""Build the fake ``spice-1.0.jar`` of tests/data/captions/FakeSpice.java (the tests' stand-in
for SPICE, which needs CoreNLP) and stand-in CoreNLP jars; used by the test fixtures and by
benchmarks/spice_cost.py. Needs a JDK (javac, jar).
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from benchmark.captions._java import pycocoevalcap_dir
from benchmark.captions.spice import CORENLP_JARS

FAKE_SOURCE = Path(__file__).parents[1] / "data" / "captions" / "FakeSpice.java"


def build_fake_spice_jar(build: Path) -> Path:
    """Compile the fake SPICE classes in ``build`` and return the jar's path."""
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


def stand_in_corenlp(folder: Path) -> Path:
    """A folder with the two CoreNLP jar names (SPICE only needs them on the classpath here)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in CORENLP_JARS:
        with zipfile.ZipFile(folder / name, "w") as zf:
            zf.writestr("README", "placeholder")
    return folder
