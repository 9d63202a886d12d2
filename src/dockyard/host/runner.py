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
import socket as socket_module
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from dockyard.errors import CommandFailed, DockyardError, HostError
from dockyard.host.base import Completed, Host
from dockyard.host.command import Command
from dockyard.router.api import ApiCall
from dockyard.state import paths

# Runs "$@" and then appends one JSON line to the audit log. $1 is the JSON prefix built
# locally (user, invocation, subcommand, command line); time, exit code and duration are
# measured on the server. Written for POSIX sh (dash, busybox).
# $2 holds earlier complete lines not yet written (Runtime API changes), written first.
AUDIT_SCRIPT = (
    'p=$1; pend=$2; shift 2; ts=$(date -u +%Y-%m-%dT%H:%M:%SZ); t0=$(date +%s%N 2>/dev/null); '
    '"$@"; rc=$?; t1=$(date +%s%N 2>/dev/null); '
    'case "$t0$t1" in *[!0-9]*|"") ms=null ;; *) ms=$(( (t1 - t0) / 1000000 )) ;; esac; '
    f"if [ -d {paths.ROOT} ]; then (umask 077; printf '%s' \"$pend\"; "
    'printf \'{"time":"%s",%s,"exit":%d,"duration_ms":%s}\\n\' "$ts" "$p" "$rc" "$ms") '
    f">> {paths.AUDIT_LOG}; fi; exit $rc"
)
#: Writes pending audit lines (from stdin) when no command is left to carry them.
FLUSH_SCRIPT = f"[ -d {paths.ROOT} ] && umask 077 && cat >> {paths.AUDIT_LOG}"


@dataclass
class Invocation:
    """Who runs which dockyard subcommand: the context every audit line carries."""

    subcommand: str
    user: str = field(default_factory=getpass.getuser)
    #: the app the command is about (dockyard.toml's [app] name), when there is one
    app: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


class Runner:
    def __init__(self, host: Host, *, invocation: Invocation, dry_run: bool = False,
                 verbose: bool = False, out: TextIO | None = None,
                 secrets: Iterable[str] = (), explain: bool = False) -> None:
        self.host = host
        self.invocation = invocation
        #: `dockyard explain`: a dry run that says, under each line, why it happens and what
        #: a failure there means
        self.explain = explain
        self.dry_run = dry_run or explain
        #: what a failure means when a command does not say (set by each flow)
        self.on_failure = "Dockyard stops and reports the error; what already ran stays done"
        self.verbose = verbose
        self.out = out or sys.stdout
        self._secrets = {s for s in secrets if s}
        self.audit = True
        self._pending: list[str] = []
        self._api_path: str | None = None

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
              timeout: float | None = None, stdout_path: str | None = None) -> Completed:
        """Run a read-only command; also under --dry-run, where it is shown as a query.
        ``stdout_path``: its output goes to that local file (a download)."""
        if self.dry_run:
            self._print(f"# query: {self.redact(command.line)}")
            self._explain(command.why or "read-only: it changes nothing",
                          "nothing changes; Dockyard reports what it could not read")
        return self._execute(command, check=check, stream=False, timeout=timeout,
                             stdout_path=stdout_path)

    def change(self, command: Command, *, check: bool = True, stream: bool = False,
               timeout: float | None = None) -> Completed | None:
        """Run a command that changes the server. Under --dry-run: print it, return None."""
        if not command.changes:
            return self.query(command, check=check, timeout=timeout)
        if self.dry_run:
            self._print(self.redact(command.line))
            self._explain(command.why, command.if_fails)
            return None
        return self._execute(command, check=check, stream=stream, timeout=timeout,
                             audited=self.audit)

    def run_all(self, commands: Iterable[Command]) -> None:
        for command in commands:
            self.change(command)

    def interactive(self, command: Command, *, tty: bool) -> int:
        """Attach our terminal (``run``/``exec``): stdout is exactly the command's output."""
        if self.dry_run:
            self._print(self.redact(command.line))
            self._explain(command.why, command.if_fails)
            return 0
        argv = list(command.argv)
        if command.changes and self.audit:
            argv = self._audited(command)
        if self.verbose:
            print(f"  {self.host.label}$ {self.redact(command.line)}", file=sys.stderr)
        return self.host.interactive(argv, tty=tty)

    # -- the router's Runtime API ----------------------------------------------------------
    def api(self, call: ApiCall, *, socket: str, check: bool = True) -> str:
        """Send one Runtime API line. Changes are printed under --dry-run and audited."""
        if self.dry_run:
            prefix = "# query: " if not call.changes else ""
            self._print(f"{prefix}router-api {shlex.quote(call.line)}")
            self._explain(call.why or "a Runtime API call to the router",
                          "" if call.changes else "nothing changes")
            if call.changes:
                return ""
        started = time.monotonic()
        if self._api_path is None:
            try:
                self._api_path = self.host.api_socket(socket)
            except HostError:
                if self.dry_run:
                    return ""
                raise
        try:
            answer = api_request(self._api_path, call.line)
        except OSError as exc:
            if self.dry_run:
                return ""  # no router yet: this very deploy would create it
            raise HostError("DY041", f"lost the connection to the router's Runtime API on "
                            f"{self.host.label} ({exc}); the router keeps its last state: run "
                            "the command again") from None
        duration = time.monotonic() - started
        failed = call.changes and is_api_error(answer)
        if self.verbose:
            mark = " [failed]" if failed else ""
            print(f"  {self.host.label} router-api> {call.line}  ({duration:.3f}s){mark}",
                  file=sys.stderr)
        if call.changes and self.audit:
            self._pending.append(self._audit_line(f"router-api {call.line}",
                                                  1 if failed else 0, duration))
        if failed and check:
            raise DockyardError("DY040", f"the router refused: {call.line}: "
                                f"{answer.strip().splitlines()[0] if answer.strip() else '?'}")
        return answer

    def flush_audit(self) -> None:
        """Write audit lines still pending (Runtime API changes) in one command."""
        if not self._pending or self.dry_run:
            return
        data = "".join(self._pending).encode()
        self._pending = []
        self.host.execute(["sh", "-c", FLUSH_SCRIPT], stdin=data)

    def _audited(self, command: Command) -> list[str]:
        pending = "".join(self._pending)
        self._pending = []
        return ["sh", "-c", AUDIT_SCRIPT, "dockyard-audit", self._audit_prefix(command),
                pending, *command.argv]

    def _audit_line(self, line: str, exit_code: int, duration: float) -> str:
        fields = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "user": self.invocation.user,
            "invocation": self.invocation.id,
            "subcommand": self.invocation.subcommand,
            "app": self.invocation.app,
            "command": self.redact(line),
            "exit": exit_code,
            "duration_ms": round(duration * 1000),
        }
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"

    def _execute(self, command: Command, *, check: bool, stream: bool,
                 timeout: float | None, audited: bool = False,
                 stdout_path: str | None = None) -> Completed:
        argv = self._audited(command) if audited else list(command.argv)
        if self.verbose and stream:
            print(f"  {self.host.label}$ {self.redact(command.line)}", file=sys.stderr)
        result = self.host.execute(argv, stdin=command.stdin, stream=stream, timeout=timeout,
                                   stdin_path=command.stdin_path, stdout_path=stdout_path)
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
            "app": self.invocation.app,
            "command": self.redact(command.line),
        }
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[1:-1]

    def note(self, line: str, why: str = "") -> None:
        """A comment line of the plan (a wait, a copy): printed under --dry-run."""
        if self.dry_run:
            self._print(line)
            if why:
                self._explain(why, "")

    def _explain(self, why: str, if_fails: str) -> None:
        if not self.explain:
            return
        self.out.write(f"    # why: {self.redact(why or 'a step of this command')}\n")
        self.out.write(f"    # if it fails: {self.redact(if_fails or self.on_failure)}\n")

    def _print(self, line: str) -> None:
        # plain write: commands are one line each, never wrapped, no markup interpretation
        self.out.write(line + "\n")
        self.out.flush()


def api_request(path: str, line: str, timeout: float = 10.0) -> str:
    """One Runtime API exchange: connect, send the line, read until HAProxy closes."""
    with socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


_API_ERRORS = ("No such", "Unknown", "Invalid", "not found", "denied", "failed", "Cannot",
               "Require", "Usage", "unexpected", "Missing", "can't", "Can't")


def is_api_error(answer: str) -> bool:
    return any(marker in answer for marker in _API_ERRORS)
