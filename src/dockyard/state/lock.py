"""Per-app (and server-wide) locks that live on the server and die with the connection.

The lock is an ``flock`` held by a process whose stdin is our SSH channel (scripts/lock.sh):
when Dockyard exits, is killed, or the connection is cut, the channel closes, ``cat`` sees
end-of-file, and the lock is released. No stale lock files, no timeouts to tune. The Runner
takes them (Runner.lock); this module says where they are and who holds them.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from dataclasses import dataclass

from dockyard.host.command import Answer, Command, Fact, change, fact
from dockyard.state import paths


def lock_path(app: str | None) -> str:
    return f"{paths.app_dir(app)}/lock" if app else f"{paths.ROOT}/router.lock"


def holder_info(command: str) -> str:
    """Who takes the lock: recorded next to it for `dockyard lock status`."""
    return json.dumps({"user": getpass.getuser(), "host": socket.gethostname(),
                       "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "command": command})


@dataclass
class Holder:
    pid: int
    user: str
    host: str
    since: str
    command: str

    def describe(self) -> str:
        return f"{self.user}@{self.host} ({self.command}) since {self.since}"


def status(app: str | None) -> Fact[tuple[bool, Holder | None]]:
    from dockyard import scripts

    return fact(scripts.inline("lock-status", lock_path(app)), parse_status_answer,
                "who holds the lock?")


def parse_status_answer(answer: Answer) -> tuple[bool, Holder | None]:
    return parse_status(answer.out)


def parse_status(text: str) -> tuple[bool, Holder | None]:
    """What ``status()`` printed: (held, holder when known)."""
    lines = text.splitlines()
    held = bool(lines) and lines[0] == "held"
    return held, parse_holder(lines[1]) if held and len(lines) > 1 else None


def parse_holder(text: str) -> Holder | None:
    pid_text, _, rest = text.strip().partition(" ")
    try:
        data = json.loads(rest)
        return Holder(int(pid_text), data.get("user", "?"), data.get("host", "?"),
                      data.get("since", "?"), data.get("command", "?"))
    except (ValueError, AttributeError):
        return None


def force_release(pid: int) -> Command:
    return change(["kill", "--", str(pid)], "end the process holding the lock (its deploy has "
                  "no connection left)")
