"""Reading dockyard.toml and turning validation failures into messages a person can act on.

A pydantic error names a location like ``("deploy", "drain_timeout")``; the person needs the
file, the key as they wrote it, the line, what is wrong and what to write instead. At most 8
lines, the first one self-sufficient. Whatever the file holds (invalid UTF-8, 2,000 nested
arrays, a 400-digit duration, control characters), the result is one of three errors:
DY001 (no such file), DY002 (not valid TOML, with its line), DY003 (a value, with its key and
line), or DY006 (the file cannot be read).
"""

from __future__ import annotations

import difflib
import errno
import re
import tomllib
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from dockyard import values
from dockyard.config.model import Config
from dockyard.errors import ConfigError
from dockyard.values import LocatedError, shown

MAX_LINES = 8
#: A dockyard.toml is a few KB; anything this large is not one.
MAX_BYTES = 1 << 20


def load_config(path: Path, destination: str | None = None) -> Config:
    """Read and validate ``path``; raise ConfigError with a short, precise message. With a
    ``destination`` (``-d staging``), ``dockyard.staging.toml`` next to it is merged over it
    (tables key by key, other values replaced), as Kamal's destinations are; the app's name
    gets the destination as suffix unless that file sets [app] name."""
    text = _read(path)
    if destination is None:
        return parse_config(text, path)
    try:
        values.destination(destination)
    except ValueError as exc:
        raise ConfigError("DY005", f"-d {shown(destination, 40)}: {exc}") from None
    overlay_path = destination_path(path, destination)
    if not overlay_path.exists():
        raise ConfigError("DY001", f"{_name(overlay_path)}: no such file; -d {destination} "
                          f"reads it merged over {path.name}: write there what differs for "
                          f"{destination} (e.g. [server] host, [web] domains, [env])")
    return parse_config(text, path, overlay=(_read(overlay_path), overlay_path),
                        destination=destination)


def destination_path(path: Path, destination: str) -> Path:
    """``dockyard.toml`` -> ``dockyard.staging.toml`` (the same directory)."""
    return path.with_name(f"{path.stem}.{destination}{path.suffix or '.toml'}")


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError("DY006", f"{_name(path)}: larger than 1 MiB; is this really a "
                              "dockyard.toml? pass the right file with -c PATH")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            "DY001",
            f"{_name(path)}: no such file; run `dockyard init` to write a starter file, or pass "
            "-c PATH",
        ) from None
    except OSError as exc:
        what = "is a directory, not a file" if exc.errno == errno.EISDIR else (
            f"cannot be read ({exc.strerror or exc})")
        raise ConfigError("DY006", f"{_name(path)}: {what}; pass the path of your "
                          "dockyard.toml with -c PATH") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError("DY002", f"{_name(path)}: line {line}, column {column}: a byte that is "
                          "not UTF-8 (the file must be UTF-8 text); save it as UTF-8") from None


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into ``base``: tables key by key, everything else replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def _has(data: dict[str, Any], loc: tuple[Any, ...]) -> bool:
    here: Any = data
    for part in loc:
        if not isinstance(here, dict) or part not in here:
            return False
        here = here[part]
    return True


def _name(path: Path | str) -> str:
    return shown(str(path), 120)[1:-1]


def _toml(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            "DY002",
            f"{name}: {_toml_message(exc)}; fix the TOML syntax (strings need quotes, tables "
            "are written [name])",
        ) from None
    except RecursionError:
        raise ConfigError("DY002", f"{name}: arrays or tables are nested too deeply to be a "
                          "dockyard.toml; fix the TOML syntax") from None


def parse_config(text: str, path: Path | str = "dockyard.toml", *,
                 overlay: tuple[str, Path | str] | None = None,
                 destination: str | None = None) -> Config:
    name = _name(path)
    data = _toml(text, name)
    sources = [(text, name, data)]
    if overlay is not None:
        over_name = _name(overlay[1])
        over = _toml(overlay[0], over_name)
        sources.insert(0, (overlay[0], over_name, over))  # an error in it is named there
        data = merge(data, over)
        app = data.get("app")
        if destination and isinstance(app, dict) and isinstance(app.get("name"), str) and \
                not _has(over, ("app", "name")):
            data["app"] = {**app, "name": f"{app['name']}-{destination}"}
    composition = None
    if isinstance(data.get("compose"), dict):
        data, composition = _with_compose(data, path)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, sources) from None
    except RecursionError:
        raise ConfigError("DY003", f"{name}: values are nested too deeply; a dockyard.toml "
                          "holds tables, lists and plain values") from None
    config._composition = composition
    return config


def _with_compose(data: dict[str, Any], path: Path | str) -> tuple[dict[str, Any], Any]:
    """The tables the compose file makes, under dockyard.toml's own (which win)."""
    from dockyard.compose.translate import compose
    from dockyard.config.model import ComposeConfig

    try:
        settings = ComposeConfig.model_validate(data["compose"])
    except ValidationError:
        return data, None  # the whole file's validation says what is wrong, and where
    derived, composition = compose(data, settings, Path(path).resolve().parent)
    return merge(derived, data), composition


def _toml_message(exc: tomllib.TOMLDecodeError) -> str:
    # tomllib says e.g. "Expected '=' after a key in a key/value pair (at line 3, column 7)"
    message = str(exc)
    match = re.search(r"\(at line ([0-9]+), column ([0-9]+)\)", message)
    if match:
        what = message[: match.start()].strip()
        return f"line {match.group(1)}, column {match.group(2)}: {what[:1].lower()}{what[1:]}"
    return shown(message, 200)[1:-1]


def _config_error(exc: ValidationError,
                  sources: list[tuple[str, str, dict[str, Any]]]) -> ConfigError:
    """``sources``: (text, name, data) of each file, the one merged last first: an error is
    named in the file that wrote the key."""
    described = []
    for err in exc.errors():
        loc = location(err)
        text, path, _ = next((s for s in sources if _has(s[2], loc)), sources[-1])
        described.append(_describe(err, text, path))
    # in file order, so the person can fix them top to bottom
    described.sort(key=lambda item: item[0] if item[0] is not None else 1 << 30)
    lines = [line for _, line in described]
    headline = lines[0]
    rest = lines[1:]
    if len(rest) > MAX_LINES - 1:
        hidden = len(rest) - (MAX_LINES - 2)
        rest = [*rest[: MAX_LINES - 2], f"  … and {hidden} more problems"]
    return ConfigError("DY003", headline, [f"  {line}" for line in rest] or None)


def location(err: Any) -> tuple[Any, ...]:
    """The key path an error is about: "[key]" markers (a dict key was invalid) dropped, and
    a LocatedError's own path (a key below the field) added."""
    loc = tuple(part for part in err["loc"] if part != "[key]")
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, LocatedError):
        loc += cause.where
    return loc


def _describe(err: Any, text: str, path: str) -> tuple[int | None, str]:
    loc = location(err)
    line = find_line(text, loc)
    return line, _message(err, loc, line, path)


def key_path(loc: tuple[Any, ...]) -> str:
    """``accessories.db.port``; odd parts quoted and escaped, list indexes as [0]."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        word = text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else shown(text, 40)
        out += ("." if out else "") + word
    return out


def _message(err: Any, loc: tuple[Any, ...], line: int | None, path: str) -> str:
    kind: str = err["type"]
    key = key_path(loc)
    where = f"{path} line {line}" if line else path
    if kind == "missing":
        if loc in _REQUIRED_HINTS:
            return f"{where}: {_REQUIRED_HINTS[loc]}"
        table = key_path(loc[:-1])
        if table:
            hint = f'add {loc[-1]} = ... under [{table}]'
        else:
            hint = f"add a [{loc[-1]}] table"
        return f"{where}: {key} is required; {hint}"
    if kind == "extra_forbidden":
        return f"{where}: unknown key {key}; {_suggest(loc)}"
    msg: str = err["msg"]
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        return f"{where}: {key}: {shown(msg, 400)[1:-1]}"
    accepted = _accepted(kind)
    return (f"{where}: {key} = {_show(err.get('input'))} is not valid: "
            f"{shown(msg.lower(), 200)[1:-1]}{accepted}")


_REQUIRED_HINTS: dict[tuple[Any, ...], str] = {
    ("app",): '[app] is required; add it with the app\'s name: [app] name = "myapp"',
    ("app", "name"): '[app] name is required; add name = "myapp" under [app] (lowercase '
                     "letters, digits, dashes)",
    ("server",): '[server] is required; add it with the server\'s address: [server] '
                 'host = "ssh://root@203.0.113.5" (or "local")',
    ("server", "host"): 'server.host is required; add host = "ssh://root@203.0.113.5" (or '
                        '"local", or hosts = [...] for several servers) under [server]',
}


def _accepted(kind: str) -> str:
    if kind.startswith("int") or kind == "int_type":
        return "; write a whole number, e.g. 8080"
    if kind.startswith("bool"):
        return "; write true or false"
    if kind.startswith("string") or kind == "string_type":
        return '; write text in quotes, e.g. "value"'
    if kind in ("list_type",):
        return '; write a list, e.g. ["a", "b"]'
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "; write a table"
    return ""


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, list):
        return "[…]" if value else "[]"
    return shown(value)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds: itself, or the values of a table of models."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is dict:
        return _model_of(get_args(annotation)[1])
    for arg in get_args(annotation):  # X | None
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _suggest(loc: tuple[Any, ...]) -> str:
    """'did you mean' from the model that owns the unknown key, plus what it accepts."""
    model: type[BaseModel] | None = Config
    parts = list(loc[:-1])
    while parts and model is not None:
        part = parts.pop(0)
        field = model.model_fields.get(str(part))
        if field is None:
            return "remove it"
        annotation = field.annotation
        model = _model_of(annotation)
        if model is not None and get_origin(annotation) is dict and parts:
            parts.pop(0)  # the table's own key, e.g. accessories.<db>
    if model is None:
        return "remove it"
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    accepted = ", ".join(known)
    if close:
        return f'did you mean "{close[0]}"? (accepted: {accepted})'
    return f"remove it (accepted: {accepted})"


# -- where a key is written ---------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _read_key(line: str, i: int) -> tuple[list[str], int] | None:
    """A dotted key starting at ``line[i]``: (its parts, the index after it). Linear."""
    parts: list[str] = []
    n = len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return None
        if line[i] in "\"'":
            quote = line[i]
            j = i + 1
            while j < n and line[j] != quote:
                j += 2 if quote == '"' and line[j] == "\\" else 1
            if j >= n:
                return None
            raw = line[i:j + 1]
            try:
                parts.append(next(iter(tomllib.loads(f"{raw} = 0"))))
            except (tomllib.TOMLDecodeError, StopIteration):
                return None
            i = j + 1
        else:
            match = _BARE.match(line, i)
            if match is None:
                return None
            parts.append(match.group())
            i = match.end()
        while i < n and line[i] in " \t":
            i += 1
        if i < n and line[i] == ".":
            i += 1
            continue
        return parts, i


def _string_state(line: str, start: int, inside: str | None) -> str | None:
    """After scanning ``line`` from ``start``: the multi-line string delimiter still open
    (\"\"\" or '''), or None. Linear: each character is looked at once."""
    i, n = start, len(line)
    while i < n:
        if inside is not None:
            end = line.find(inside, i)
            while end != -1 and inside == '"""' and _escaped(line, end):
                end = line.find(inside, end + 1)
            if end == -1:
                return inside
            i = end + 3
            inside = None
            continue
        c = line[i]
        if c == "#":
            return None
        if line.startswith('"""', i) or line.startswith("'''", i):
            inside = line[i:i + 3]
            i += 3
            continue
        if c in "\"'":
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if c == '"' and line[j] == "\\" else 1
            i = j + 1
            continue
        i += 1
    return inside


def _escaped(line: str, pos: int) -> bool:
    backslashes = 0
    while pos - backslashes - 1 >= 0 and line[pos - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def find_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the key at ``loc`` (tomllib gives lines only for syntax).

    Tracks the current ``[table]`` and matches ``key =`` lines, dotted keys included, and
    skips the inside of multi-line strings. Linear in the size of the file. When the key
    itself is missing (a "required" error) the table's header line is returned.
    """
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            break
        parts.append(str(part))
    current: list[str] = []
    table_line: int | None = None
    best: int | None = None
    inside: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):
        if inside is not None:
            inside = _string_state(line, 0, inside)
            continue
        stripped = line.lstrip(" \t")
        offset = len(line) - len(stripped)
        if stripped.startswith("["):
            start = offset + (2 if stripped.startswith("[[") else 1)
            found = _read_key(line, start)
            if found is None or not line.startswith("]", found[1]):
                continue
            current = found[0]
            if current == parts:
                return number
            if current == parts[: len(current)] and len(current) < len(parts):
                table_line = table_line or number
            continue
        found = _read_key(line, offset)
        if found is None or found[1] >= len(line) or line[found[1]] != "=":
            continue
        inside = _string_state(line, found[1] + 1, None)
        path = current + found[0]
        if path[: len(parts)] == parts and parts:
            return number
        if len(current) < len(path) < len(parts) and path == parts[: len(path)]:
            best = number  # the enclosing inline table; a line of its own key wins
    return best or table_line
