"""YCSB workload property files, read as Java ``.properties``, plus the typed core-workload settings.

The syntax is Java's: ``#`` and ``!`` comments, blank lines, ``key=value``,
``key: value`` or ``key value``, backslash continuations and escapes. Unknown
keys are kept as strings (a YCSB file is taken unchanged). Stricter than Java
where a typo would otherwise slip through: a key with no value, an empty key,
a bad escape, or a core-workload key whose value does not fit its type is a
``ValueError`` naming the file and line (or the ``-p`` override).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from .generators import REQUEST_DISTRIBUTIONS, ZIPFIAN_CONSTANT


def _integer(lo):
    def convert(text):
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError("expected an integer")
        v = int(text)
        if v < lo:
            raise ValueError(f"must be at least {lo}")
        return v

    return convert


def _number(lo, hi, lo_open=False, hi_open=False):
    def convert(text):
        try:
            v = float(text.rstrip("dDfF"))  # Java's parseDouble takes 0.5d
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
            raise ValueError(f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")
        return v

    return convert


def _choice(*names):
    def convert(text):
        if text not in names:
            raise ValueError(f"expected one of {', '.join(names)}")
        return text

    return convert


_PROPORTION = _number(0.0, math.inf)
#: Core-workload keys we act on: converter and YCSB's default (None: depends on the data).
SCHEMA = {
    "recordcount": (_integer(0), None),
    "operationcount": (_integer(0), None),
    "readproportion": (_PROPORTION, 0.95),
    "updateproportion": (_PROPORTION, 0.05),
    "insertproportion": (_PROPORTION, 0.0),
    "scanproportion": (_PROPORTION, 0.0),
    "readmodifywriteproportion": (_PROPORTION, 0.0),
    "deleteproportion": (_PROPORTION, 0.0),  # ours: YCSB's core workload has no deletes
    "requestdistribution": (_choice(*REQUEST_DISTRIBUTIONS), "uniform"),
    "zipfianconstant": (_number(0.0, 1.0, lo_open=True, hi_open=True), ZIPFIAN_CONSTANT),
    "minscanlength": (_integer(1), 1),
    "maxscanlength": (_integer(1), 1000),
    "scanlengthdistribution": (_choice("uniform", "zipfian"), "uniform"),
    "insertorder": (_choice("hashed", "ordered"), "hashed"),
    "hotspotdatafraction": (_number(0.0, 1.0), 0.2),
    "hotspotopnfraction": (_number(0.0, 1.0), 0.8),
    "exponential.percentile": (_number(0.0, 100.0, lo_open=True, hi_open=True), 95.0),
    "exponential.frac": (_number(0.0, math.inf, lo_open=True), 0.8571428571),
    "fieldcount": (_integer(1), 10),  # a record's fields (workloads.records)
    "fieldlength": (_integer(1), 100),  # bytes per field
}

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c != "\\" or i + 1 == len(text):
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "u":
            code = text[i + 2 : i + 6]
            if not re.fullmatch(r"[0-9A-Fa-f]{4}", code):
                raise ValueError(f"bad escape \\u{code}")
            out.append(chr(int(code, 16)))
            i += 6
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


def _logical_lines(text: str):
    """(first physical line number, logical line) pairs, comments and blanks dropped."""
    pending, start = None, 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip(" \t\f")
        if pending is None:
            if not line or line[0] in "#!":
                continue
            start, pending = number, ""
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:
            pending += line[:-1]
            continue
        yield start, pending + line
        pending = None
    if pending:
        yield start, pending


def _split(line: str) -> tuple[str, str]:
    """Key and value of a logical line, by Java's rules (first unescaped ``=``, ``:`` or blank)."""
    i = 0
    while i < len(line) and line[i] not in "=: \t\f":
        i += 2 if line[i] == "\\" else 1
    key, rest = line[:i], line[i:]
    stripped = rest.lstrip(" \t\f")
    has_separator = stripped[:1] in ("=", ":")
    if has_separator:
        stripped = stripped[1:].lstrip(" \t\f")
    if not key:
        raise ValueError("empty key")
    if not has_separator and not stripped:
        raise ValueError(f"expected key=value, found only {key!r}")
    return _unescape(key), _unescape(stripped)


def typed(key: str, value, where: str):
    """The typed value of a core-workload key (other keys: unchanged); ``ValueError`` naming ``where`` if it does not fit."""
    if key not in SCHEMA:
        return value
    try:
        return SCHEMA[key][0](str(value).strip())
    except ValueError as e:
        raise ValueError(f"{where}: {key}={value}: {e}") from None


def parse_properties(path_or_text, overrides=None) -> dict:
    """Parse a YCSB property file (a path) or its text, then apply ``-p`` style overrides.

    A ``str`` holding a newline or ``=`` is text; any other ``str`` or a
    ``Path`` is a file name. ``overrides`` is a dict or an iterable of
    ``"key=value"`` strings; later entries win. Returns ``{key: value}`` with
    string values, file order, unknown keys included.
    """
    if isinstance(path_or_text, str) and ("\n" in path_or_text or "=" in path_or_text):
        source, text = "<text>", path_or_text
    else:
        source = str(path_or_text)
        text = Path(path_or_text).read_text(encoding="utf-8", errors="replace")
    props = {}
    for number, line in _logical_lines(text):
        where = f"{source}, line {number}"
        try:
            key, value = _split(line)
        except ValueError as e:
            raise ValueError(f"{where}: malformed property {line.strip()!r}: {e}") from None
        typed(key, value, where)
        props[key] = value
    items = overrides.items() if isinstance(overrides, dict) else (overrides or ())
    for item in items:
        if isinstance(item, str):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"override -p {item!r}: expected key=value")
        else:
            key, value = item
        key, value = key.strip(), str(value).strip()
        typed(key, value, f"override -p {key}={value}")
        props[key] = value
    return props


def core_settings(props: dict) -> dict:
    """Every ``SCHEMA`` key with its typed value from ``props`` (strings or numbers) or its default."""
    return {key: typed(key, props[key], "property") if key in props else default
            for key, (_, default) in SCHEMA.items()}
