"""The rich console the commands print tables with, and whether they show progress bars.

Rich lays a table out for the terminal's width, and for 80 columns when the output is not a
terminal (a file or a pipe), wrapping or cutting wide tables there. Piped output has no width
to fit: :func:`table_console` then lays out for a width no table reaches, so a table written
to a file is the whole table, one row a line.

Progress bars (tqdm, on standard error) are for a person watching a terminal: written to a
file or a pipe, a bar's carriage returns leave lines such as ``matching:   0%|  | 0/12``
behind in the log (the bar's own clearing is a carriage return, which a log keeps as text).
:func:`show_progress` shows them only when standard error is a terminal.

Example:
    >>> console = table_console()
    >>> console.is_terminal or console.width == PIPED_WIDTH
    True
"""

from __future__ import annotations

from typing import Any

PIPED_WIDTH = 10_000


def table_console(*, stderr: bool = False, **kwargs: Any):
    """A ``rich.console.Console`` on standard output (or ``stderr``); full width when that
    stream is not a terminal."""
    from rich.console import Console

    console = Console(stderr=stderr, **kwargs)
    if not console.is_terminal and "width" not in kwargs:
        console = Console(stderr=stderr, width=PIPED_WIDTH, **kwargs)
    return console


def show_progress(quiet: bool = False) -> bool:
    """Whether a command shows progress bars: not ``quiet`` and standard error a terminal.

    Example:
        >>> show_progress(quiet=True)
        False
    """
    import sys

    if quiet:
        return False
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
