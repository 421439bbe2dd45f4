"""The ``benchmark`` command line.

Each command lives in the module that owns its work and exposes
``register(subparsers)``, which adds its sub-parser and sets ``func`` (a callable taking the
parsed ``argparse.Namespace`` and returning an exit code). This file only wires them up.

Example:
    $ benchmark score --gt gt.json --pred pred.json --json scores.json
"""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmark.errors import BenchmarkError, InputError

# Modules that register sub-commands, in the order they are listed in ``--help``.
COMMAND_MODULES: tuple[str, ...] = (
    "benchmark.commands.score",
    "benchmark.commands.demo",
    "benchmark.commands.convert",
    "benchmark.commands.metrics",
    "benchmark.commands.sample",
    "benchmark.commands.datacard",
    "benchmark.commands.caption",
    "benchmark.commands.bias",
    "benchmark.commands.compare",
    "benchmark.commands.analyze",
    "benchmark.commands.show",
    "benchmark.commands.fetch_spice",
    "benchmark.commands.published",
)


#: Optional packages -> the extra of ``dvoc-benchmark`` that installs them (pyproject.toml).
OPTIONAL_EXTRAS: dict[str, str] = {
    "torch": "model", "transformers": "model", "tokenizers": "model",
    "google": "captioning", "cv2": "captioning", "PIL": "captioning",
    "sqlalchemy": "leaderboard", "jinja2": "leaderboard", "psycopg": "postgres",
}


def missing_extra(exc: BaseException | None) -> tuple[str, str] | None:
    """``(module, extra)`` when ``exc`` is an import of an optional package that is not
    installed, else ``None``.

    Example:
        >>> missing_extra(ModuleNotFoundError("No module named 'cv2'", name="cv2"))
        ('cv2', 'captioning')
        >>> missing_extra(ModuleNotFoundError("No module named 'benchmark.x'", name="benchmark.x"))
    """
    if not isinstance(exc, ImportError) or not getattr(exc, "name", None):
        return None
    extra = OPTIONAL_EXTRAS.get(exc.name.split(".")[0])
    return None if extra is None else (exc.name, extra)


def _install_hint(extra: str) -> str:
    return f"pip install 'dvoc-benchmark[{extra}]'"


def parse_pairs(items: list[str], *, form: str, field: str) -> dict[str, str]:
    """``KEY=VALUE`` command-line items as a dict, split at the first ``=`` (a value such as
    ``synthetic:num_videos=2`` holds more); a malformed or repeated key is an InputError.

    Example:
        >>> parse_pairs(["a=x.json", "b=synthetic:seed=1"], form="NAME=PATH", field="--pred")
        {'a': 'x.json', 'b': 'synthetic:seed=1'}
    """
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InputError(f"expected {form}, got {item!r}", field=field)
        if key in pairs:
            raise InputError(f"{key!r} given twice", field=field)
        pairs[key] = value
    return pairs


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="benchmark",
        description="Dense Video Object Captioning evaluation (CHOTA and friends).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``benchmark`` console script; returns the process exit code."""
    return run_command(build_parser().parse_args(argv))


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed sub-command (``args.func``) the way every console script of the package
    does: a user error is one line on stderr and exit code 2, Ctrl-C exit code 130.

    Example:
        >>> import argparse
        >>> run_command(argparse.Namespace(func=lambda args: None))
        0
    """
    try:
        return int(args.func(args) or 0)
    except BenchmarkError as exc:
        # Input problems are the user's to fix: one clear line, no traceback.
        message = str(exc)
        found = missing_extra(exc.__cause__)
        if found and "pip install" not in message:
            message += f" ({_install_hint(found[1])})"
        print(f"error: {message}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        found = missing_extra(exc)
        if found is None:
            raise  # not an optional package: a bug, keep the traceback
        print(f"error: this command needs the optional package {found[0]!r}, which is not "
              f"installed: {_install_hint(found[1])}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
