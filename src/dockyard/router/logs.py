"""The router's request log: two rings in HAProxy's memory, read through the Runtime API.

``requests`` holds the most recent requests (about 40,000: 8 MiB of ~200-byte lines),
``errors`` the ones that ended in an error (5xx, aborted, timed out; with ``option
log-separate-errors`` HAProxy logs them at level err) and the router's own alerts (a server
going down), kept longer because they are fewer (2 MiB). Nothing is written to disk and a
router restart empties both: they are for looking at what happens now, not an archive.
Lines are HAProxy's httplog format with an ISO 8601 timestamp (ring ``format timed``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from dockyard.router import api
from dockyard.router import config as rc

_LINE = re.compile(
    r"<(?P<prio>[0-9]+)>(?P<time>\S+) (?P<client>\S+) \[[^\]]*\] (?P<frontend>\S+) "
    r"(?P<backend>[^/\s]+)/(?P<server>\S+) (?P<timers>\S+) (?P<status>-?[0-9]+) "
    r"(?P<bytes>[0-9]+) \S+ \S+ (?P<flags>\S+) \S+ \S+ \"(?P<request>[^\"]*)\"")
_EVENT = re.compile(r"<(?P<prio>[0-9]+)>(?P<time>\S+) (?P<text>.*)")


@dataclass(frozen=True)
class Request:
    time: str
    app: str
    status: int
    method: str
    path: str
    took_ms: int
    client: str
    flags: str
    error: bool
    #: a line that is not a request (a server going up or down): its text
    event: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        when = self.time[:19].replace("T", " ")
        if self.event:
            return f"{when}  {self.event}"
        took = f"{self.took_ms} ms" if self.took_ms >= 0 else "-"
        mark = f"  [{self.flags}]" if self.error or self.flags[:2] != "--" else ""
        return (f"{when}  {self.app or '-'}  {self.status}  {self.method} {self.path}  {took}  "
                f"{self.client}{mark}")


def show(ring: str, *, follow: bool = False) -> api.ApiCall:
    return api.ApiCall(f"show events {ring}" + (" -w" if follow else ""),
                       f"read the router's {ring} log (in its memory)", changes=False)


def parse(text: str, apps: dict[str, str]) -> list[Request]:
    """Ring lines -> requests; ``apps``: backend -> app name."""
    out = []
    for line in text.split("\n"):
        if parsed := parse_line(line, apps):
            out.append(parsed)
    return out


def parse_line(line: str, apps: dict[str, str]) -> Request | None:
    m = _LINE.match(line)
    if m:
        method, _, rest = m["request"].partition(" ")
        path = rest.rsplit(" ", 1)[0] if " " in rest else rest
        timers = m["timers"].split("/")
        took = int(timers[-1]) if timers[-1].lstrip("-").isdigit() else -1
        backend = m["backend"]
        app = apps.get(backend, "" if backend in ("no_app", "acme") else backend)
        if backend == "acme":
            app = "(acme challenge)"
        return Request(m["time"], app, int(m["status"]), method, path, took, m["client"],
                       m["flags"], int(m["prio"]) % 8 <= 3)
    event = _EVENT.match(line)
    if event and event["text"].strip():
        return Request(event["time"], "", 0, "", "", -1, "", "", int(event["prio"]) % 8 <= 3,
                       event=event["text"].strip())
    return None


def keep(request: Request, *, app: str | None = None, status: str | None = None,
         since: datetime | None = None) -> bool:
    """The filters of `dockyard router logs`: an app, a status (503, 5xx, 4xx,5xx), an age."""
    if app is not None and request.app != app:
        return False
    if status is not None and not _status_matches(request.status, status):
        return False
    if since is not None:
        try:
            when = datetime.fromisoformat(request.time)
        except ValueError:
            return True
        if when < since:
            return False
    return True


STATUS = re.compile(r"[1-5](?:[0-9]{2}|xx)(?:,[1-5](?:[0-9]{2}|xx))*")


def _status_matches(code: int, wanted: str) -> bool:
    for item in wanted.split(","):
        if item.endswith("xx"):
            if code // 100 == int(item[0]):
                return True
        elif code == int(item):
            return True
    return False


def merged(requests: list[Request], errors: list[Request]) -> list[Request]:
    """Both rings, each request once, oldest first (errors live longer in theirs)."""
    seen = {(r.time, r.client, r.path, r.event) for r in requests}
    return sorted([*requests, *(e for e in errors
                                if (e.time, e.client, e.path, e.event) not in seen)],
                  key=lambda r: r.time)


def now() -> datetime:
    return datetime.now(UTC)


__all__ = ["Request", "keep", "merged", "parse", "rc", "show"]
