"""Looking at the rendered pages in a real headless browser (Debian's ``chromium``).

Used for screenshots (``leaderboard render --screenshot``) and by the tests, which load a
page with ``#sort=COLUMN&dir=asc`` and read back the DOM after the page's own script ran.

Example:
    >>> screenshot("site/sample-box.html", "board.png")               # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from benchmark.errors import ToolMissingError

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    """Path of a Chromium/Chrome binary (``$CHROMIUM`` first); raises ``ToolMissingError``."""
    for name in (os.environ.get("CHROMIUM"), *_CANDIDATES):
        if name and shutil.which(name):
            return str(shutil.which(name))
    raise ToolMissingError("no headless browser found: install Debian's 'chromium' package "
                           "(apt-get install -y chromium) or set $CHROMIUM")


def _run(args: list[str], *, timeout: float) -> str:
    # A throwaway profile: concurrent runs (pytest-xdist) must not share Chromium's lock.
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--hide-scrollbars", f"--user-data-dir={profile}",
               "--virtual-time-budget=3000", *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chromium failed ({done.returncode}): {done.stderr[-500:]}")
    return done.stdout


def page_url(page: str | os.PathLike[str], fragment: str = "") -> str:
    """A ``file://`` URL for a local page, with an optional ``#fragment``."""
    url = Path(page).resolve().as_uri()
    return f"{url}#{fragment}" if fragment else url


def dump_dom(page: str | os.PathLike[str], *, fragment: str = "", timeout: float = 60) -> str:
    """The page's DOM after its scripts ran (``fragment`` e.g. ``sort=DetA&dir=asc``)."""
    return _run(["--dump-dom", page_url(page, fragment)], timeout=timeout)


def screenshot(page: str | os.PathLike[str], png: str | os.PathLike[str], *,
               width: int = 1280, height: int = 1600, fragment: str = "",
               timeout: float = 60) -> Path:
    """Save a PNG screenshot of a local page; returns the PNG path."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--screenshot={png}", f"--window-size={width},{height}", page_url(page, fragment)],
         timeout=timeout)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot at {png}")
    return png
