"""Errors raised for bad input or a missing external tool.

Every error names where the problem is (file, record, field) so that the user can fix it
without reading a traceback. The CLI prints ``str(error)`` and exits with status 2.
"""

from __future__ import annotations

import reprlib
from typing import Any

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 3, 80, 80, 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = 6


def shown(value: Any) -> str:
    """A user's value as an error message shows it: its repr, cut short however long or
    deeply nested the value is (a message must not be megabytes long or overflow the stack).

    Example:
        >>> shown([1.5, "a"]), shown("x" * 1000)[:12], shown(10**400)[:10]
        ("[1.5, 'a']", "'xxxxxxxxxxx", '1000000000')
        >>> value = []
        >>> for _ in range(10000): value = [value]
        >>> shown(value)
        '[[[[...]]]]'
    """
    return _SHOWN.repr(value)


class BenchmarkError(Exception):
    """Base class of the errors the package raises on purpose."""


class InputError(BenchmarkError, ValueError):
    """Malformed or inconsistent input.

    Example:
        >>> str(InputError("a bbox has a NaN", source="pred.json", record=3, field="bbox"))
        "pred.json: record 3, field 'bbox': a bbox has a NaN"
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        record: int | str | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.record = record
        self.field = field
        where = []
        if record is not None:
            where.append(f"record {record}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = source or ""
        if where:
            prefix = f"{prefix}: {', '.join(where)}" if prefix else ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class OutputError(BenchmarkError, ValueError):
    """An output path cannot be written safely (a symbolic link, a device, a folder, ...);
    the message names the path."""


class ToolMissingError(BenchmarkError, RuntimeError):
    """An external tool (Java, a jar, an optional package) is not available."""


class CaptionScorerError(BenchmarkError, RuntimeError):
    """An external caption scorer (a JVM) failed while scoring; the message carries its stderr."""
