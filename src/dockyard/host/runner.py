"""The one place commands are executed.

Everything that happens on a server goes through ``Runner``: it prints commands under
``--dry-run`` instead of running those that change something, shows each with its duration
under ``--verbose``, redacts secret values from anything it prints, raises CommandFailed with
the stderr tail on failure, and wraps every change so the server appends it to its audit log
in the same remote shell (no extra round trip).
"""

from __future__ import annotations

import getpass
import json
import shlex
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from dockyard.errors import CommandFailed
from dockyard.host.base import Completed, Host
from dockyard.host.command import Command
from dockyard.state import paths

# Runs "$@" and then appends one JSON line to the audit log. $1 is the JSON prefix built
# locally (user, invocation, subcommand, command line); time, exit code and duration are
# measured on the server. Written for POSIX sh (dash, busybox).
AUDIT_SCRIPT = (
    'p=$1; shift; ts=$(date -u +%Y-%m-%dT%H:%M:%SZ); t0=$(date +%s%N 2>/dev/null); "$@"; rc=$?; '
    "t1=$(date +%s%N 2>/dev/null); "
    'case "$t0$t1" in *[!0-9]*|"") ms=null ;; *) ms=$(( (t1 - t0) / 1000000 )) ;; esac; '
    f"if [ -d {paths.ROOT} ]; then (umask 077; "
    'printf \'{"time":"%s",%s,"exit":%d,"duration_ms":%s}\\n\' "$ts" "$p" "$rc" "$ms" '
    f">> {paths.AUDIT_LOG}); fi; exit $rc"
)


@dataclass
class Invocation:
    """Who runs which dockyard subcommand: the context every audit line carries."""

    subcommand: str
    user: str = field(default_factory=getpass.getuser)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


class Runner:
    def __init__(self, host: Host, *, invocation: Invocation, dry_run: bool = False,
                 verbose: bool = False, out: TextIO | None = None,
                 secrets: Iterable[str] = ()) -> None:
        self.host = host
        self.invocation = invocation
        self.dry_run = dry_run
        self.verbose = verbose
        self.out = out or sys.stdout
        self._secrets = {s for s in secrets if s}
        self.audit = True

    # -- secrets -------------------------------------------------------------------------
    def add_secrets(self, values: Iterable[str]) -> None:
        """Values that must never be printed; every output path runs through redact()."""
        self._secrets.update(v for v in values if v)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text

    # -- running -------------------------------------------------------------------------
    def query(self, command: Command, *, check: bool = True,
              timeout: float | None = None) -> Completed:
        """Run a read-only command; also under --dry-run, where it is shown as a query."""
        if self.dry_run:
            self._print(f"# query: {self.redact(command.line)}")
        return self._execute(command, check=check, stream=False, timeout=timeout)

    def change(self, command: Command, *, check: bool = True, stream: bool = False,
               timeout: float | None = None) -> Completed | None:
        """Run a command that changes the server. Under --dry-run: print it, return None."""
        if not command.changes:
            return self.query(command, check=check, timeout=timeout)
        if self.dry_run:
            self._print(self.redact(command.line))
            return None
        return self._execute(command, check=check, stream=stream, timeout=timeout,
                             audited=self.audit)

    def run_all(self, commands: Iterable[Command]) -> None:
        for command in commands:
            self.change(command)

    def _execute(self, command: Command, *, check: bool, stream: bool,
                 timeout: float | None, audited: bool = False) -> Completed:
        argv = list(command.argv)
        if audited:
            argv = ["sh", "-c", AUDIT_SCRIPT, "dockyard-audit", self._audit_prefix(command),
                    *argv]
        result = self.host.execute(argv, stdin=command.stdin, stream=stream, timeout=timeout)
        if self.verbose:
            mark = "" if result.ok else f" [exit {result.returncode}]"
            print(f"  {self.host.label}$ {self.redact(command.line)}  "
                  f"({result.duration:.2f}s){mark}", file=sys.stderr)
        if check and not result.ok:
            raise CommandFailed(self.redact(command.line), result.returncode,
                                self.redact(result.err), self.host.label)
        return result

    def _audit_prefix(self, command: Command) -> str:
        fields = {
            "user": self.invocation.user,
            "invocation": self.invocation.id,
            "subcommand": self.invocation.subcommand,
            "command": self.redact(command.line),
        }
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[1:-1]

    def _print(self, line: str) -> None:
        # plain write: commands are one line each, never wrapped, no markup interpretation
        self.out.write(line + "\n")
        self.out.flush()


def join(argv: Iterable[str]) -> str:
    return shlex.join(list(argv))
