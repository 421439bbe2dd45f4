"""`pytest -m slow` selects the long checks the README names, and the default run skips them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collect(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                           "no:xdist", "-p", "no:cacheprovider", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode in (0, 5), done.stdout[-2000:] + done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if "::" in line]


def test_slow_marker_selects_what_the_readme_says():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    claim = re.search(r"`pytest -m slow`\s+runs the long checks.*?\.(?=\s)", readme, re.S)
    assert claim, "the README no longer says what `pytest -m slow` runs"
    slow = _collect("-m", "slow", "tests")
    assert slow, "`pytest -m slow` selects nothing although the README says it runs long checks"
    files = {item.split("::")[0] for item in slow}
    for path in files:  # every file holding slow checks is named by the README's sentence
        assert path in " ".join(claim.group(0).split()), (path, claim.group(0))
    default = set(_collect("tests/metrics"))
    assert default and not default & set(slow)  # the default run skips them
