"""Releases: numbered per app (v1, v2, … as on Heroku), one plain JSON file each under
/var/lib/dockyard/apps/<app>/releases/, plus ``current`` naming the live one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.host.command import Command, query
from dockyard.router.config import Route
from dockyard.state import paths


@dataclass
class Release:
    number: int
    image: str  # dockyard/<app>:v<N>
    kind: str = "deploy"  # deploy | rollback | env
    image_id: str = ""
    git_commit: str | None = None
    git_dirty: bool = False
    config_hash: str = ""
    created_at: str = ""
    user: str = ""
    outcome: str = "pending"  # pending | live | failed | superseded
    rollback_of: int | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    error: str | None = None
    env_hash: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"v{self.number}"

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, text: str) -> Release:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class AppState:
    releases: list[Release]
    current: int | None
    route: Route | None

    def release(self, number: int) -> Release | None:
        return next((r for r in self.releases if r.number == number), None)

    @property
    def next_number(self) -> int:
        return max((r.number for r in self.releases), default=0) + 1

    def previous(self) -> Release | None:
        """The release that was live before the current one (for rollback)."""
        if self.current is None:
            return None
        candidates = [r for r in self.releases
                      if r.number < self.current and r.outcome in ("live", "superseded")]
        return max(candidates, key=lambda r: r.number, default=None)


def read_state(app: str) -> Command:
    d = paths.app_dir(app)
    script = (f'for f in {d}/releases/*.json; do [ -f "$f" ] && cat "$f"; done; '
              f"echo '--current'; cat {d}/current 2>/dev/null; echo; "
              f"echo '--route'; cat {d}/route.json 2>/dev/null; true")
    return query(["sh", "-c", script], f"read {app}'s releases and routing state")


def parse_state(text: str) -> AppState:
    section = "releases"
    releases: list[Release] = []
    current: int | None = None
    route: Route | None = None
    for line in text.splitlines():
        line = line.strip()
        if line in ("--current", "--route"):
            section = line[2:]
            continue
        if not line:
            continue
        try:
            if section == "releases":
                releases.append(Release.from_json(line))
            elif section == "current" and line.isdigit():
                current = int(line)
            elif section == "route":
                route = Route(**json.loads(line))
        except (TypeError, ValueError):
            continue
    releases.sort(key=lambda r: r.number)
    return AppState(releases, current, route)
