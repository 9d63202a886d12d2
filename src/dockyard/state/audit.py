"""The server's audit log (/var/lib/dockyard/audit.log) as a timeline.

Every command that changed the server left one JSON line, written by the same remote shell
that ran it (time, user, invocation id, subcommand, app, the command line with secrets
redacted, exit code, duration); scheduled backups add theirs. Lines of one invocation are one
entry of the timeline.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from dockyard import scripts
from dockyard.host.command import Fact, fact

#: write-files.sh's exit when the routes changed under it: Writer.commit reads and retries
RETRIED = 75


def read(lines: int) -> Fact[list[Entry]]:
    return fact(scripts.inline("read-audit", str(lines)), lambda a: parse(a.out),
                "read the end of the server's audit log")


@dataclass
class Entry:
    """One dockyard invocation (or one scheduled job) and what it changed."""

    invocation: str
    time: str
    user: str
    subcommand: str
    app: str
    commands: list[str] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)
    duration_ms: int = 0
    finished: str = ""
    #: the command's own duration, from its start to its end (written by Runner.finish);
    #: None for lines written before Dockyard recorded it
    took_ms: int | None = None

    @property
    def took_s(self) -> float:
        """Seconds, as the command's summary said them (older entries: the changes' sum)."""
        return (self.took_ms if self.took_ms is not None else self.duration_ms) / 1000

    @property
    def outcome(self) -> str:
        """ok, or the last command that failed. A router write that found the routes changed
        by another app meanwhile (write-files.sh's exit 75) is retried, not a failure."""
        failed = [c for c, e in zip(self.commands, self.exits, strict=True)
                  if e != 0 and not (e == RETRIED and "write-files.sh" in c)]
        if not failed:
            return "ok"
        return f"failed: {failed[-1][:80]}"

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "outcome": self.outcome, "steps": len(self.commands),
                "seconds": self.took_s}


def parse(text: str) -> list[Entry]:
    """Oldest first. Lines that are not JSON (a torn write) are skipped."""
    entries: dict[str, Entry] = {}
    order: list[str] = []
    for raw in text.split("\n"):
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(line, dict):
            continue
        if "command" not in line:
            took = line.get("took_ms")
            key = str(line.get("invocation") or "")
            if isinstance(took, int) and key in entries:
                entries[key].took_ms = took
            continue
        key = str(line.get("invocation") or "")
        if key == "cron":  # every scheduled run is its own entry
            key = f"cron-{line.get('time')}-{line.get('command')}"
        entry = entries.get(key)
        if entry is None:
            entry = Entry(key, str(line.get("time", "")), str(line.get("user", "")),
                          str(line.get("subcommand", "")), str(line.get("app", "")))
            entries[key] = entry
            order.append(key)
        entry.commands.append(str(line["command"]))
        exit_code = line.get("exit", 0)
        entry.exits.append(int(exit_code) if isinstance(exit_code, int) else 0)
        duration = line.get("duration_ms")
        entry.duration_ms += int(duration) if isinstance(duration, int) else 0
        entry.finished = str(line.get("time", entry.finished))
    return [entries[k] for k in order]
