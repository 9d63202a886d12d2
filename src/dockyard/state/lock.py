"""Per-app (and server-wide) locks that live on the server and die with the connection.

The lock is a ``flock`` held by a process whose stdin is our SSH channel: when Dockyard
exits, is killed, or the connection is cut, the channel closes, ``cat`` sees end-of-file,
and the lock is released. No stale lock files, no timeouts to tune.
"""

from __future__ import annotations

import getpass
import json
import shlex
import socket
import subprocess
import time
from dataclasses import dataclass

from dockyard.errors import DockyardError
from dockyard.host.base import Completed, Host
from dockyard.host.command import Command, change, query
from dockyard.state import paths

BUSY = 75


def lock_path(app: str | None) -> str:
    return f"{paths.app_dir(app)}/lock" if app else f"{paths.ROOT}/router.lock"


def acquire_argv(path: str, info: str) -> list[str]:
    directory = path.rsplit("/", 1)[0]
    holder = f"printf '%s %s\\n' \"$$\" \"$1\" > {shlex.quote(path)}.info; echo locked; exec cat >/dev/null"
    return ["sh", "-c", 'mkdir -p "$1" && shift && exec "$@"', "dockyard-lock", directory,
            "flock", "-n", "-E", str(BUSY), path, "sh", "-c", holder, "dockyard-lock", info]


def status(app: str | None) -> Command:
    path = lock_path(app)
    return query(["sh", "-c", f"if [ -e {path} ] && ! flock -n {path} true; then echo held; "
                  f"cat {path}.info 2>/dev/null; else echo free; fi"], "who holds the lock?")


def force_release(app: str | None, pid: int) -> Command:
    return change(["kill", str(pid)], "end the process holding the lock (its deploy has no "
                  "connection left)")


@dataclass
class Holder:
    pid: int
    user: str
    host: str
    since: str
    command: str

    def describe(self) -> str:
        return f"{self.user}@{self.host} ({self.command}) since {self.since}"


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


class Lock:
    """Held while the context is open; ``dry_run`` takes nothing."""

    def __init__(self, host: Host, app: str | None, command: str, *, dry_run: bool = False,
                 wait: float = 0.0) -> None:
        self.host = host
        self.app = app
        self.command = command
        self.dry_run = dry_run
        self.wait = wait
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Lock:
        if self.dry_run:
            return self
        info = json.dumps({"user": getpass.getuser(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "command": self.command})
        deadline = time.monotonic() + self.wait
        while True:
            proc = self.host.background(acquire_argv(lock_path(self.app), info))
            assert proc.stdout is not None
            line = proc.stdout.readline().decode().strip()
            if line == "locked":
                self.proc = proc
                return self
            proc.wait(timeout=30)
            err = proc.stderr.read().decode() if proc.stderr else ""
            # a connection that failed is a connection error (DY010...), not a lock one
            self.host.check_transport(Completed(proc.returncode, b"", err.encode(), 0.0))
            if proc.returncode != BUSY:
                raise DockyardError("DY050", f"could not take the lock on {self.host.label}: "
                                    f"{err.strip() or f'exit {proc.returncode}'}")
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        holder = self.holder()
        who = holder.describe() if holder else "another dockyard command"
        what = f"app {self.app}" if self.app else "the router"
        raise DockyardError(
            "DY050", f"{what} on {self.host.label} is locked by {who}; wait for it to finish "
            "(or, if it is gone, run: dockyard lock release)")

    def holder(self) -> Holder | None:
        return parse_status(self.host.execute(list(status(self.app).argv)).out)[1]

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
