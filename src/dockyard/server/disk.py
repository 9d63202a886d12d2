"""`dockyard server status` and `server prune`: every app on the server and what its disk
holds (scripts/server-status.sh), and what no kept release, accessory or backup needs
(scripts/server-prune.sh: the same script lists under --dry-run and removes)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from dockyard import scripts
from dockyard.host.command import Answer, Command, Fact, change, fact

#: warnings: the filesystem this full, logs or reclaimable images this large
FULL_PERCENT = 85
LARGE = 1 << 30


@dataclass
class AppOnServer:
    name: str
    release: str
    keep: int
    domains: list[str] = field(default_factory=list)
    #: process -> (running, total) containers
    processes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def health(self) -> str:
        web = self.processes.get("web")
        if self.release == "-":
            return "not deployed"
        if not web or web[0] == 0:
            return "web not running"
        down = [p for p, (up, _total) in self.processes.items() if up == 0]
        return f"{', '.join(sorted(down))} not running" if down else "running"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "health": self.health,
                "replicas": {p: up for p, (up, _total) in self.processes.items()}}


@dataclass
class ServerStatus:
    apps: list[AppOnServer] = field(default_factory=list)
    #: docker system df: type -> (size, reclaimable) as Docker prints them
    docker: dict[str, tuple[str, str]] = field(default_factory=dict)
    logs_bytes: int = 0
    backups_bytes: int = 0
    fs_size_kb: int = 0
    fs_used_kb: int = 0
    fs_avail_kb: int = 0

    @property
    def used_percent(self) -> int:
        return round(100 * self.fs_used_kb / self.fs_size_kb) if self.fs_size_kb else 0

    def warnings(self) -> list[str]:
        out = []
        if self.used_percent >= FULL_PERCENT:
            out.append(f"the disk Docker uses is {self.used_percent}% full; free space with: "
                       "dockyard server prune")
        images = self.docker.get("Images")
        if images and parse_size(images[1].split(" ")[0]) >= LARGE:
            out.append(f"images: {images[1]} reclaimable; see: dockyard server prune --dry-run")
        if self.logs_bytes >= LARGE:
            out.append(f"container logs take {human(self.logs_bytes)}; each container keeps at "
                       "most 50 MB (5 files of 10 MB): many containers, or ones not made by "
                       "Dockyard")
        for app in self.apps:
            if app.health not in ("running", "not deployed"):
                out.append(f"{app.name}: {app.health}; see: dockyard status (in its directory)")
        return out

    def as_dict(self) -> dict[str, object]:
        return {"apps": [a.as_dict() for a in self.apps],
                "disk": {"docker": {k: {"size": v[0], "reclaimable": v[1]}
                                    for k, v in self.docker.items()},
                         "logs_bytes": self.logs_bytes, "backups_bytes": self.backups_bytes,
                         "filesystem": {"size_kb": self.fs_size_kb, "used_kb": self.fs_used_kb,
                                        "available_kb": self.fs_avail_kb,
                                        "used_percent": self.used_percent}},
                "warnings": self.warnings()}


_SIZE = re.compile(r"([0-9.]+)\s*([kMGT]?B)")
_UNITS = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4}


def parse_size(text: str) -> int:
    """Docker's sizes ("1.2GB", "512.3kB") in bytes."""
    m = _SIZE.match(text.strip())
    return round(float(m.group(1)) * _UNITS[m.group(2)]) if m else 0


def human(n: int) -> str:
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n}B"


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def status() -> Fact[ServerStatus]:
    def parse(answer: Answer) -> ServerStatus:
        out = ServerStatus()
        apps: dict[str, AppOnServer] = {}
        for line in answer.out.splitlines():
            parts = line.split("\t")
            kind, rest = parts[0], parts[1:]
            if kind == "app" and len(rest) == 3:
                apps[rest[0]] = AppOnServer(rest[0], "-" if rest[1] == "-" else f"v{rest[1]}",
                                            _int(rest[2]) or 5)
            elif kind == "domains" and rest and rest[0] in apps:
                apps[rest[0]].domains = [d for d in rest[1:] if d]
            elif kind == "ctr" and len(rest) == 3 and rest[0] in apps and rest[1] != "release":
                counts = apps[rest[0]].processes.setdefault(rest[1], [0, 0])
                counts[0] += rest[2] == "running"
                counts[1] += 1
            elif kind == "df" and len(rest) == 3:
                out.docker[rest[0]] = (rest[1], rest[2])
            elif kind == "logs" and rest:
                out.logs_bytes = _int(rest[0])
            elif kind == "backups" and rest:
                out.backups_bytes = _int(rest[0])
            elif kind == "fs" and len(rest) >= 3:
                out.fs_size_kb, out.fs_used_kb, out.fs_avail_kb = (_int(r) for r in rest[:3])
        out.apps = [apps[name] for name in sorted(apps)]
        return out

    return fact(scripts.inline("server-status"), parse,
                "every app on the server, and what Docker, logs and backups take on its disk")


@dataclass(frozen=True)
class Prunable:
    kind: str  # image, container, volume (volumes are listed, never removed)
    name: str
    size: int = 0


def _prunable(answer: Answer) -> list[Prunable]:
    out = []
    for line in answer.out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("image", "container", "volume"):
            out.append(Prunable(parts[0], parts[1], _int(parts[2]) if len(parts) > 2 else 0))
    return out


def prunable() -> Fact[list[Prunable]]:
    return fact(scripts.inline("server-prune", "list"), _prunable,
                "what no kept release, accessory or backup needs")


def prune() -> Command:
    return change(scripts.inline("server-prune", "remove"),
                  "remove images of releases no app keeps (every app's live release and its "
                  "keep_releases newest stay), Dockyard's dangling images and stopped app "
                  "containers; volumes are never removed",
                  if_fails="what was not removed stays; run it again")


def parse_removed(text: str) -> list[Prunable]:
    return _prunable(Answer(0, text, ""))
