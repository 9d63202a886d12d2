"""Reading dockyard.toml and turning validation failures into messages a person can act on.

A pydantic error names a location like ``("deploy", "drain_timeout")``; the person needs the
file, the key as they wrote it, the line, what is wrong and what to write instead. At most 8
lines, the first one self-sufficient.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dockyard.config.model import Config
from dockyard.errors import ConfigError

MAX_LINES = 8


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raise ConfigError with a short, precise message."""
    if not path.exists():
        raise ConfigError(
            "DY001",
            f"{path}: no such file; run `dockyard init` to write a starter file, or pass "
            "-c PATH",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("DY001", f"{path}: cannot be read ({exc})") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path | str = "dockyard.toml") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            "DY002",
            f"{path}: {_toml_message(exc)}; fix the TOML syntax (strings need quotes, tables "
            "are written [name])",
        ) from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, text, str(path)) from None


def _toml_message(exc: tomllib.TOMLDecodeError) -> str:
    # tomllib says e.g. "Expected '=' after a key in a key/value pair (at line 3, column 7)"
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    if match:
        what = message[: match.start()].strip()
        return f"line {match.group(1)}, column {match.group(2)}: {what[:1].lower()}{what[1:]}"
    return message


def _config_error(exc: ValidationError, text: str, path: str) -> ConfigError:
    described = [_describe(err, text, path) for err in exc.errors()]
    # in file order, so the person can fix them top to bottom
    described.sort(key=lambda item: item[0] if item[0] is not None else 1 << 30)
    lines = [line for _, line in described]
    headline = lines[0]
    rest = lines[1:]
    if len(rest) > MAX_LINES - 1:
        hidden = len(rest) - (MAX_LINES - 2)
        rest = [*rest[: MAX_LINES - 2], f"  … and {hidden} more problems"]
    return ConfigError("DY003", headline, [f"  {line}" for line in rest] or None)


def _describe(err: Any, text: str, path: str) -> tuple[int | None, str]:
    line = find_line(text, tuple(err["loc"]))
    return line, _message(err, line, path)


def _message(err: Any, line: int | None, path: str) -> str:
    loc: tuple[Any, ...] = tuple(err["loc"])
    kind: str = err["type"]
    key = ".".join(str(part) for part in loc)
    where = f"{path} line {line}" if line else path
    if kind == "missing":
        if loc in _REQUIRED_HINTS:
            return f"{where}: {_REQUIRED_HINTS[loc]}"
        table = ".".join(str(part) for part in loc[:-1])
        if table:
            hint = f'add {loc[-1]} = ... under [{table}]'
        else:
            hint = f"add a [{loc[-1]}] table"
        return f"{where}: {key} is required; {hint}"
    if kind == "extra_forbidden":
        return f"{where}: unknown key {key}; {_suggest(loc)}"
    value = err.get("input")
    shown = _show(value)
    msg: str = err["msg"]
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        return f"{where}: {key}: {msg}"
    accepted = _accepted(kind, err)
    return f"{where}: {key} = {shown} is not valid: {msg.lower()}{accepted}"


_REQUIRED_HINTS: dict[tuple[Any, ...], str] = {
    ("app",): '[app] is required; add it with the app\'s name: [app] name = "myapp"',
    ("app", "name"): '[app] name is required; add name = "myapp" under [app] (lowercase '
                     "letters, digits, dashes)",
    ("server",): '[server] is required; add it with the server\'s address: [server] '
                 'host = "ssh://root@203.0.113.5" (or "local")',
    ("server", "host"): 'server.host is required; add host = "ssh://root@203.0.113.5" (or '
                        '"local") under [server]',
}


def _accepted(kind: str, err: Any) -> str:
    ctx = err.get("ctx") or {}
    if kind.startswith("int") or kind == "int_type":
        return "; write a whole number, e.g. 8080"
    if kind.startswith("string") or kind == "string_type":
        return '; write text in quotes, e.g. "value"'
    if kind in ("list_type",):
        return '; write a list, e.g. ["a", "b"]'
    if kind in ("dict_type", "model_type"):
        return "; write a table"
    if kind in ("greater_than_equal", "less_than_equal") and ctx:
        return ""
    return ""


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, str):
        return f'"{value}"' if len(value) < 60 else f'"{value[:57]}…"'
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "…"


def _suggest(loc: tuple[Any, ...]) -> str:
    """'did you mean' from the model that owns the unknown key, plus what it accepts."""
    model: type[BaseModel] | None = Config
    for part in loc[:-1]:
        if model is None:
            break
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    if model is None:
        return "remove it"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    accepted = ", ".join(known)
    if close:
        return f'did you mean "{close[0]}"? (accepted: {accepted})'
    return f"remove it (accepted: {accepted})"


_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"]+(?:\s*\.\s*[A-Za-z0-9_\-\"]+)*)\s*=")


def find_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the key at ``loc`` (tomllib gives lines only for syntax).

    Tracks the current ``[table]`` and matches ``key =`` lines, including dotted keys.
    When the key itself is missing (a "required" error) the table's header line is returned.
    """
    parts = [str(p) for p in loc]
    current: list[str] = []
    table_line: int | None = None
    best: int | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            current = [p.strip().strip('"') for p in header.group(1).split(".")]
            if current == parts:
                return number
            if current == parts[: len(current)] and len(current) < len(parts):
                table_line = table_line or number
            continue
        key = _KEY.match(raw)
        if not key:
            continue
        path = current + [p.strip().strip('"') for p in key.group(1).split(".")]
        n = min(len(path), len(parts))
        if n and path[:n] == parts[:n] and len(path) >= len(current) + 1:
            # the longest match wins: the exact key over its enclosing inline table
            if path[: len(parts)] == parts:
                return number
            if len(path) > len(current) and path == parts[: len(path)]:
                best = number
    return best or table_line
