"""Command-line conventions of `python -m workloads` and every bench tool.

A user's mistake (a bad option, a missing file, an unknown or absent data
set) is found before any work starts and reported as one line on stderr
that names the fix, exit status 2.  A wrong result exits 1 with its own
message (bench.check.Mismatch); anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

USAGE_EXIT = 2


class UsageError(Exception):
    """A mistake in a command line or its inputs: shown as one line, exit status 2."""


class _ShowDefaults(argparse.HelpFormatter):
    """--help lists an option's default when it has one (not None, False or a list)."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = not (action.default is None or action.default is False or action.default == argparse.SUPPRESS
                     or isinstance(action.default, list))
        if shown and "%(default)" not in text and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and defaults shown in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _ShowDefaults)
        super().__init__(*args, **kwargs)

    def error(self, message):
        """Exits 2 with `prog: error: message (see prog --help)`."""
        self.exit(USAGE_EXIT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive(text: str) -> int:
    """argparse type: an integer > 0 (underscores allowed: 1_000_000)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def existing_file(text: str) -> Path:
    """argparse type: a path to a readable regular file."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def run(body, args, prog: str) -> int:
    """body(args)'s exit status, or 2 after one line on stderr if it raised UsageError."""
    try:
        return body(args)
    except UsageError as mistake:
        print(f"{prog}: error: {mistake}", file=sys.stderr)
        return USAGE_EXIT


def require(modules, extra: str, prog: str) -> None:
    """Exits 2 with one line naming ``pip install "nfl[extra]"`` if any of modules is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        print(f'{prog}: error: needs {", ".join(missing)}, not installed: pip install "nfl[{extra}]"', file=sys.stderr)
        raise SystemExit(USAGE_EXIT)
