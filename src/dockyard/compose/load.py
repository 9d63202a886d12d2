"""Reading docker-compose files the way ``docker compose config`` does: several files merged
(``-f a.yml -f b.yml``), ``extends``, ``include``, ``profiles`` and ``${VAR}`` interpolation
from the laptop's environment and the project's ``.env``.

The result is a :class:`Project`: every active service in one normalized shape (environment
and labels as mappings, ``build`` as a table, ports and volumes in the long syntax, paths
absolute), so the translation (translate.py) reads one form whatever the file wrote. A string
that took a variable's value is a :class:`FromEnv`: the translation treats it as a secret.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dockyard.errors import ConfigError
from dockyard.values import shown

#: A compose file is a few KB; anything this large is not one.
MAX_BYTES = 1 << 20


class FromEnv(str):
    """A value that came (in whole or in part) from the laptop's environment or .env."""

    __slots__ = ()


@dataclass
class Note:
    """Something said about the file: what was understood, changed or left out."""

    service: str | None
    key: str
    text: str
    level: str = "warning"  # "info", "warning" (honoured differently or not at all)

    def line(self, file: str) -> str:
        where = f"service {self.service!r}" if self.service else file
        return f"{file}: {where}, {self.key}: {self.text}" if self.key else f"{where}: {self.text}"


@dataclass
class Project:
    """The merged, interpolated compose project."""

    files: list[Path]
    directory: Path
    services: dict[str, dict[str, Any]]
    volumes: dict[str, Any] = field(default_factory=dict)
    networks: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)  # top-level x-dockyard
    inactive: list[str] = field(default_factory=list)  # services of profiles not enabled
    notes: list[Note] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.files[0].name


def error(file: str, text: str) -> ConfigError:
    return ConfigError("DY007", f"{file}: {text}")


# -- .env and interpolation --------------------------------------------------------------------

_BRACED = re.compile(r"(?P<name>[_a-zA-Z][_a-zA-Z0-9]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


def _closing(text: str, start: int) -> int:
    """The index of the } that closes a ${ opened before ``start`` (nesting counted)."""
    depth = 1
    for i in range(start, len(text)):
        if text[i] == "{" and text[i - 1] == "$":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``export`` allowed, # comments, optional quotes), as compose reads
    ``.env``; a missing file is empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise error(str(path), f"cannot be read ({exc}); fix or remove it") from None
    out: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[_a-zA-Z][_a-zA-Z0-9.-]*", key):
            raise error(f"{path}", f"line {number}: not KEY=VALUE; write e.g. DB_PASSWORD=s3cret")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        out[key] = value
    return out


class Interpolator:
    """``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``,
    ``${VAR:+alt}``, ``$VAR`` and ``$$`` (a literal ``$``), from the environment given."""

    def __init__(self, env: Mapping[str, str], file: str) -> None:
        self.env = env
        self.file = file
        self.unset: set[str] = set()

    def __call__(self, text: str, where: str) -> str:
        out: list[str] = []
        used = False
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$" or i + 1 == len(text):
                out.append(char)
                i += 1
                continue
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                end = _closing(text, i + 2)
                if end < 0:
                    raise error(self.file, f"{where}: {shown(text[i:i + 40], 60)} has no closing "
                                "}; write ${NAME} or $$ for a literal $")
                out.append(self._braced(text[i + 2:end], where))
                used = True
                i = end + 1
            else:
                named = re.match(r"[_a-zA-Z][_a-zA-Z0-9]*", text[i + 1:])
                if named is None:
                    out.append("$")
                    i += 1
                    continue
                out.append(self._value(named.group(0)))
                used = True
                i += 1 + len(named.group(0))
        result = "".join(out)
        return FromEnv(result) if used or isinstance(text, FromEnv) else result

    def _braced(self, inner_text: str, where: str) -> str:
        inner = _BRACED.fullmatch(inner_text)
        if inner is None:
            raise error(self.file, f"{where}: {shown('${' + inner_text + '}', 60)} is not a "
                        "variable; write ${NAME}, ${NAME:-default} or $$ for a literal $")
        name, op, arg = inner.group("name"), inner.group("op"), inner.group("arg") or ""
        value = self.env.get(name)
        if op in (":-", "-"):
            if value is None or (op == ":-" and value == ""):
                return self(arg, where)
        elif op in (":?", "?"):
            if value is None or (op == ":?" and value == ""):
                raise error(self.file, f"{where}: ${{{name}}} is required"
                            f"{': ' + arg if arg else ''}; set it in the environment or .env")
        elif op in (":+", "+"):
            present = value is not None and (op == "+" or value != "")
            return self(arg, where) if present else ""
        return self._value(name)

    def _value(self, name: str) -> str:
        value = self.env.get(name)
        if value is None:
            self.unset.add(name)
            return ""
        return value

    def tree(self, node: Any, where: str) -> Any:
        if isinstance(node, str):
            return self(node, where)
        if isinstance(node, list):
            return [self.tree(item, where) for item in node]
        if isinstance(node, dict):
            return {key: self.tree(value, f"{where}.{key}" if where else str(key))
                    for key, value in node.items()}
        return node


# -- normalizing one service -------------------------------------------------------------------

def _mapping(value: Any, file: str, where: str, *, sep: str = "=") -> dict[str, Any]:
    """environment/labels/args: a mapping, or a list of KEY=VALUE (KEY alone: no value)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): (None if v is None else _scalar(v)) for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, str):
                raise error(file, f"{where}: {shown(str(item), 60)} is not KEY{sep}VALUE")
            key, has, val = item.partition(sep)
            out[key.strip()] = (FromEnv(val) if isinstance(item, FromEnv) else val) if has \
                else None
        return out
    raise error(file, f"{where}: write a mapping (KEY: value) or a list of KEY{sep}VALUE")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _absolute(base: Path, path: str) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*://", path) or path.startswith("git@"):
        return path  # a remote build context (git URL): left as written
    expanded = os.path.expanduser(path)
    return str((base / expanded).resolve()) if not os.path.isabs(expanded) else expanded


def _port(item: Any, file: str, where: str) -> dict[str, Any]:
    if isinstance(item, dict):
        return {"target": int(item["target"]), "published": _scalar(item["published"])
                if item.get("published") is not None else None,
                "host_ip": item.get("host_ip"), "protocol": item.get("protocol", "tcp")}
    text = _scalar(item)
    protocol = "tcp"
    if "/" in text:
        text, protocol = text.rsplit("/", 1)
    parts = text.rsplit(":", 2) if text.count(":") <= 2 else [text]
    try:
        target = int(parts[-1].split("-")[0])
    except ValueError:
        raise error(file, f"{where}: {shown(str(item), 40)} is not a port; write e.g. "
                    '"8000:8000" or "127.0.0.1:5432:5432"') from None
    published = parts[-2] if len(parts) >= 2 else None
    host_ip = parts[0] if len(parts) == 3 else None
    return {"target": target, "published": published or None, "host_ip": host_ip or None,
            "protocol": protocol}


def _volume(item: Any, base: Path, file: str, where: str) -> dict[str, Any]:
    if isinstance(item, dict):
        out = dict(item)
        if out.get("type") == "bind" and isinstance(out.get("source"), str):
            out["source"] = _absolute(base, out["source"])
        out.setdefault("read_only", False)
        return out
    if not isinstance(item, str):
        raise error(file, f"{where}: {shown(str(item), 60)} is not a volume")
    parts = item.split(":")
    if len(parts) == 1:
        return {"type": "volume", "source": None, "target": parts[0], "read_only": False}
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) > 2 else ""
    bind = source.startswith((".", "/", "~"))
    return {"type": "bind" if bind else "volume",
            "source": _absolute(base, source) if bind else source, "target": target,
            "read_only": "ro" in mode.split(",")}


def normalize(name: str, service: Any, base: Path, file: str) -> dict[str, Any]:
    """One service in the long, merged-ready shape (paths resolved against ``base``)."""
    if not isinstance(service, dict):
        raise error(file, f"service {name!r}: write a mapping of settings (image:, build:, ...)")
    out = dict(service)
    where = f"services.{name}"
    if "environment" in out:
        out["environment"] = _mapping(out["environment"], file, f"{where}.environment")
    if "labels" in out:
        out["labels"] = _mapping(out["labels"], file, f"{where}.labels")
    if "build" in out:
        build = out["build"]
        build = {"context": build} if isinstance(build, str) else dict(build or {})
        build["context"] = _absolute(base, str(build.get("context", ".")))
        if "args" in build:
            build["args"] = _mapping(build["args"], file, f"{where}.build.args")
        out["build"] = build
    if "env_file" in out:
        files = out["env_file"]
        files = [files] if isinstance(files, str | dict) else list(files or [])
        out["env_file"] = [_absolute(base, f["path"] if isinstance(f, dict) else f)
                           for f in files]
    if "depends_on" in out:
        deps = out["depends_on"]
        out["depends_on"] = ({d: {"condition": "service_started"} for d in deps}
                             if isinstance(deps, list) else
                             {k: dict(v or {"condition": "service_started"})
                              for k, v in (deps or {}).items()})
    if "ports" in out:
        out["ports"] = [_port(p, file, f"{where}.ports") for p in out["ports"] or []]
    if "expose" in out:
        out["expose"] = [_scalar(p) for p in out["expose"] or []]
    if "volumes" in out:
        out["volumes"] = [_volume(v, base, file, f"{where}.volumes") for v in out["volumes"] or []]
    if "networks" in out and isinstance(out["networks"], list):
        out["networks"] = {n: None for n in out["networks"]}
    if "profiles" in out:
        out["profiles"] = [str(p) for p in out["profiles"] or []]
    return out


# -- merging (-f a.yml -f b.yml; extends) --------------------------------------------------------

#: Keys whose lists are appended (without duplicates), as docker compose merges them.
_UNIQUE = {"ports", "expose", "cap_add", "cap_drop", "dns", "dns_search", "external_links",
           "links", "security_opt", "tmpfs", "devices", "profiles", "extra_hosts"}
#: Keys merged key by key.
_MAPPINGS = {"environment", "labels", "depends_on", "networks", "sysctls", "ulimits",
             "logging", "deploy"}


def merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = out.get(key)
        if key in _MAPPINGS and isinstance(old, dict) and isinstance(value, dict):
            out[key] = _deep(old, value) if key in ("deploy", "logging") else {**old, **value}
        elif key == "build" and isinstance(old, dict) and isinstance(value, dict):
            args = {**old.get("args", {}), **value.get("args", {})}
            out[key] = {**old, **value, **({"args": args} if args else {})}
        elif key == "volumes" and isinstance(old, list) and isinstance(value, list):
            by_target = {v.get("target"): v for v in old}
            by_target.update({v.get("target"): v for v in value})
            out[key] = list(by_target.values())
        elif key in _UNIQUE and isinstance(old, list) and isinstance(value, list):
            out[key] = old + [v for v in value if v not in old]
        else:
            out[key] = value
    return out


def _deep(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep(out[key], value) if isinstance(value, dict) and isinstance(
            out.get(key), dict) else value
    return out


# -- files ---------------------------------------------------------------------------------------

def _read_yaml(path: Path, shown_as: str) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise error(shown_as, "larger than 1 MiB; is this really a compose file?")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("DY001", f"{shown_as}: no such file; [compose] file names the "
                          "compose file, relative to dockyard.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(shown_as, f"cannot be read ({exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise error(shown_as, f"{where}{problem}; fix the YAML (indent with spaces)") from None
    except RecursionError:
        raise error(shown_as, "nested too deeply to be a compose file") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(shown_as, "the top level must be a mapping with services:")
    return data


@dataclass
class _Loaded:
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, Any] = field(default_factory=dict)
    networks: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict)
    configs: dict[str, Any] = field(default_factory=dict)
    extensions: dict[str, Any] = field(default_factory=dict)


def _load_file(path: Path, base: Path, interpolate: Interpolator, notes: list[Note],
               depth: int = 0) -> _Loaded:
    """One file: interpolated, its services normalized against ``base``, its ``extends``
    resolved and its ``include`` read."""
    if depth > 5:
        raise error(path.name, "include/extends nest more than 5 files deep")
    raw = _read_yaml(path, path.name)
    interpolate.file = path.name
    data = {k: (v if str(k).startswith("x-") else interpolate.tree(v, str(k)))
            for k, v in raw.items()}
    unknown = set(data) - {"version", "name", "services", "volumes", "networks", "secrets",
                           "configs", "include"} - {k for k in data if str(k).startswith("x-")}
    for key in sorted(unknown):
        notes.append(Note(None, str(key), "not a compose key: left out"))
    services_raw = data.get("services") or {}
    if not isinstance(services_raw, dict):
        raise error(path.name, "services: write a mapping of service names to settings")
    out = _Loaded(extensions=dict(raw.get("x-dockyard") or {}))
    for key in ("volumes", "networks", "secrets", "configs"):
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise error(path.name, f"{key}: write a mapping of names")
        setattr(out, key, {str(k): (v or {}) for k, v in value.items()})
    normalized = {str(n): normalize(str(n), s, base, path.name) for n, s in services_raw.items()}
    for name in list(normalized):
        normalized[name] = _extended(name, normalized, path, base, interpolate, notes, depth, [])
    out.services = normalized
    for item in data.get("include") or []:
        spec = item if isinstance(item, dict) else {"path": item}
        paths = spec.get("path")
        for one in [paths] if isinstance(paths, str) else list(paths or []):
            included = Path(_absolute(path.parent, str(one)))
            if not included.is_file():
                raise error(path.name, f"include: {shown(str(one), 80)} cannot be read (no such "
                            "file); fix the path or remove it")
            sub = _load_file(included, included.parent, interpolate, notes, depth + 1)
            for name, service in sub.services.items():
                if name in out.services:
                    raise error(path.name, f"include: {included.name} defines service {name!r} "
                                "again; rename one of them")
                out.services[name] = service
            for key in ("volumes", "networks", "secrets", "configs"):
                getattr(out, key).update(getattr(sub, key))
            interpolate.file = path.name
    return out


def _extended(name: str, services: dict[str, dict[str, Any]], path: Path, base: Path,
              interpolate: Interpolator, notes: list[Note], depth: int,
              seen: list[str]) -> dict[str, Any]:
    service = services[name]
    ext = service.get("extends")
    if ext is None:
        return service
    if name in seen:
        raise error(path.name, f"service {name!r}: extends loops ({' -> '.join([*seen, name])})")
    spec = {"service": ext} if isinstance(ext, str) else dict(ext)
    parent_name = str(spec.get("service", ""))
    if spec.get("file"):
        other = Path(_absolute(path.parent, str(spec["file"])))
        if not other.is_file():
            raise error(path.name, f"service {name!r}, extends: {shown(str(spec['file']), 80)} "
                        "cannot be read (no such file); copy the settings in, or fix the path")
        loaded = _load_file(other, other.parent, interpolate, notes, depth + 1)
        interpolate.file = path.name
        parent = loaded.services.get(parent_name)
    else:
        parent = (_extended(parent_name, services, path, base, interpolate, notes, depth,
                            [*seen, name]) if parent_name in services else None)
    if parent is None:
        raise error(path.name, f"service {name!r}, extends: no service {parent_name!r} to "
                    "extend; fix the name")
    parent = {k: v for k, v in parent.items() if k not in ("depends_on", "links",
                                                           "volumes_from")}
    parent.pop("x-dockyard", None)  # Dockyard's own word is said per service
    own = {k: v for k, v in service.items() if k != "extends"}
    return merge_service(parent, own)


def load(files: list[Path], profiles: list[str] | None = None,
         environ: Mapping[str, str] | None = None) -> Project:
    """Read ``files`` (the first one's directory is the project's: relative paths and .env are
    taken from there), merged in order."""
    directory = files[0].parent
    env = {**read_dotenv(directory / ".env"), **(os.environ if environ is None else environ)}
    interpolate = Interpolator(env, files[0].name)
    notes: list[Note] = []
    merged = _Loaded()
    for path in files:
        one = _load_file(path, directory, interpolate, notes)
        for name, service in one.services.items():
            merged.services[name] = (merge_service(merged.services[name], service)
                                     if name in merged.services else service)
        for key in ("volumes", "networks", "secrets", "configs", "extensions"):
            getattr(merged, key).update(getattr(one, key))
    for name in sorted(interpolate.unset):
        notes.append(Note(None, "", f"${{{name}}} is not set in the environment or .env: "
                          "an empty string is used (as docker compose does)"))
    wanted = set(profiles or [])
    wanted |= {p for p in env.get("COMPOSE_PROFILES", "").split(",") if p}
    active = {n: s for n, s in merged.services.items()
              if not s.get("profiles") or wanted & set(s["profiles"])}
    inactive = sorted(set(merged.services) - set(active))
    for name, service in active.items():
        for dep in service.get("depends_on", {}):
            if dep in inactive:
                raise error(files[0].name, f"service {name!r} depends on {dep!r}, whose "
                            f"profiles ({', '.join(merged.services[dep]['profiles'])}) are "
                            "not enabled; add one to [compose] profiles")
            if dep not in active:
                raise error(files[0].name, f"service {name!r} depends on {dep!r}, which is "
                            "not a service of the file; fix the name")
    return Project(files=list(files), directory=directory, services=active,
                   volumes=merged.volumes, networks=merged.networks, secrets=merged.secrets,
                   configs=merged.configs, extensions=merged.extensions, inactive=inactive,
                   notes=notes)
