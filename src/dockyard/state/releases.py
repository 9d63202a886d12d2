"""Releases: numbered per app (v1, v2, … as on Heroku), one plain JSON file each under
/var/lib/dockyard/apps/<app>/releases/, plus ``current`` naming the live one."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from dockyard import scripts
from dockyard.host.command import Answer, Fact, fact
from dockyard.router.config import Route
from dockyard.state import paths


class Kind(StrEnum):
    """How a release was made."""

    DEPLOY = "deploy"  # a new image
    ROLLBACK = "rollback"  # an earlier release's image and environment
    ENV = "env"  # the same image with a changed environment


class Outcome(StrEnum):
    PENDING = "pending"  # being rolled out (or cut off on the way: the next deploy cleans up)
    LIVE = "live"  # serving now
    SUPERSEDED = "superseded"  # served, then replaced: a rollback target
    FAILED = "failed"  # never served


@dataclass
class Release:
    number: int
    image: str  # dockyard/<app>:v<N>
    kind: Kind = Kind.DEPLOY
    image_id: str = ""
    #: the manifest digest ("sha256:..."): of the image pulled from a registry, or pushed
    #: by the local builder; "" for an image built on the server (it has no manifest)
    image_digest: str = ""
    #: where the image came from: "server build", "local build", or the registry reference
    image_source: str = ""
    git_commit: str | None = None
    git_dirty: bool = False
    config_hash: str = ""
    created_at: str = ""
    user: str = ""
    outcome: Outcome = Outcome.PENDING
    rollback_of: int | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    error: str | None = None
    env_hash: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"v{self.number}"

    @property
    def served(self) -> bool:
        """It went live once: it can be rolled back to."""
        return self.outcome in (Outcome.LIVE, Outcome.SUPERSEDED)

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, text: str) -> Release:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        release = cls(**known)
        release.kind = Kind(release.kind) if release.kind in Kind._value2member_map_ \
            else Kind.DEPLOY
        release.outcome = Outcome(release.outcome) \
            if release.outcome in Outcome._value2member_map_ else Outcome.PENDING
        return release


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

    @property
    def live(self) -> Release | None:
        return self.release(self.current) if self.current is not None else None

    def previous(self) -> Release | None:
        """The release that was live before the current one (for rollback)."""
        if self.current is None:
            return None
        candidates = [r for r in self.releases if r.number < self.current and r.served]
        return max(candidates, key=lambda r: r.number, default=None)


def read_state(app: str) -> Fact[AppState]:
    return fact(scripts.inline("read-app", paths.app_dir(app)), parse_answer,
                f"read {app}'s releases and routing state")


def parse_answer(answer: Answer) -> AppState:
    return parse_state(answer.out)


def parse_state(text: str) -> AppState:
    section = "releases"
    releases: list[Release] = []
    current: int | None = None
    route: Route | None = None
    for line in text.split("\n"):
        line = line.strip()
        if line in ("--current", "--route"):
            section = line[2:]
            continue
        if not line:
            continue
        try:
            if section == "releases":
                releases.append(Release.from_json(line))
            elif section == "current" and line.isascii() and line.isdigit():
                current = int(line)
            elif section == "route":
                route = Route.from_json(line)
        except (TypeError, ValueError):
            continue
    releases.sort(key=lambda r: r.number)
    return AppState(releases, current, route)
