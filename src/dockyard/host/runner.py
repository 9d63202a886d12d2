"""The one place where plans meet a server.

Flows hand the Runner steps (commands, facts, waits, locks, Runtime API calls); the Runner
either runs them or, under ``--dry-run``, prints them, so the flows themselves never test
for a dry run. It also:

- asks several facts, and runs several commands, in one SSH round trip (each command still
  gets its own exit code and its own line in the server's audit log);
- shows each command with its duration under ``--verbose``, and redacts secret values from
  everything it prints or logs;
- raises CommandFailed with the stderr tail when a command fails;
- installs Dockyard's scripts on the server before the first command that runs one.
"""

from __future__ import annotations

import getpass
import json
import shlex
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from dockyard import scripts
from dockyard.errors import CommandFailed, DockyardError, failed
from dockyard.host.base import Completed, Entry, Host
from dockyard.host.command import Answer, Command, Fact, Wait, change, fact
from dockyard.router.api import ApiCall, is_api_error
from dockyard.state import paths

T = TypeVar("T")


@dataclass
class Invocation:
    """Who runs which dockyard subcommand: the context every audit line carries."""

    subcommand: str
    user: str = field(default_factory=getpass.getuser)
    #: the app the command is about (dockyard.toml's [app] name), when there is one
    app: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


def scripts_installed() -> Fact[bool]:
    return fact(["test", "-f", f"{scripts.directory()}/.complete"], lambda a: a.ok,
                "are this version's scripts on the server?")


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
        #: whether this version's scripts are on the server (None: not known yet)
        self.scripts_ready: bool | None = None
        #: when the command started (the CLI sets the moment Dockyard started): a command's
        #: duration is measured from here to finish(), the one number the summary, --json and
        #: `history` show
        self.started = host.clock.now()
        self.changed = False
        self._took: float | None = None
        self._locks = 0
        self._laptop: Host | None = None
        #: with several [server] hosts: a runner for each other host (the cluster's nodes);
        #: this one runs on the first, where the app's records and audit log live
        self.peers: list[Runner] = []
        #: what starts each printed line ("HOST: " in a cluster, "" on one server)
        self.where = ""

    # -- secrets -------------------------------------------------------------------------
    def add_secrets(self, values: Iterable[str]) -> None:
        """Values that must never be printed; every output path runs through redact()."""
        self._secrets.update(v for v in values if v)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text

    # -- facts -----------------------------------------------------------------------------
    def read(self, *facts: Fact[Any]) -> list[Any]:
        """Ask every fact in one round trip (also under --dry-run: nothing changes)."""
        if not facts:
            return []
        for f in facts:
            self._show_query(f.command)
        answers = self._batch([Entry(f.argv, parallel=True) for f in facts])
        return [f.parse(_answer(a)) for f, a in zip(facts, answers, strict=True)]

    def read_one(self, f: Fact[T]) -> T:
        value: T = self.read(f)[0]
        return value

    def query(self, command: Command, *, check: bool = True, timeout: float | None = None,
              stdout_path: str | None = None) -> Completed:
        """One read-only command, run also under --dry-run. ``stdout_path``: its output goes
        to that local file (a download)."""
        self._show_query(command)
        started = time.monotonic()
        result = self.host.execute(command.argv, stdin=command.stdin, timeout=timeout,
                                   stdout_path=stdout_path)
        self._verbose(command, result, started)
        if check and not result.ok:
            raise failed(list(command.argv), self.redact(command.line), result.returncode,
                         self.redact(result.err), self.host.label)
        return result

    # -- changes ---------------------------------------------------------------------------
    def change(self, command: Command, *, check: bool = True, stream: bool = False,
               timeout: float | None = None) -> Completed:
        """Run a command that changes the server and append it to the audit log; under
        --dry-run print it and return its planned result. Queries pass to query()."""
        if not command.changes:
            return self.query(command, check=check, timeout=timeout)
        if self.dry_run:
            self._print_change(command)
            return _planned(command)
        self._ensure_scripts([command])
        self.changed = True
        if stream or command.stdin_path is not None:
            return self._single(command, check=check, stream=stream, timeout=timeout)
        return self.change_all([command], check=check, timeout=timeout)[0]

    def change_all(self, commands: Sequence[Command], *, check: bool = True,
                   timeout: float | None = None) -> list[Completed]:
        """Several commands in one round trip, in order; the first that fails stops the rest
        (unless ``check`` is False). Queries among them run only for real (they ask about
        what the changes before them made); under --dry-run they give their planned output.
        At most one command may have stdin."""
        if not commands:
            return []
        if self.dry_run:
            for command in commands:
                if command.changes:
                    self._print_change(command)
                else:
                    self._show_query(command)
            return [_planned(c) for c in commands]
        with_stdin = [c for c in commands if c.stdin is not None or c.stdin_path is not None]
        if len(with_stdin) > 1:
            raise ValueError("a batch can feed stdin to one command only")
        self._ensure_scripts(commands)
        self.changed = self.changed or any(c.changes for c in commands)
        entries = [Entry(c.argv, audit=c.changes and self.audit, check=check and c.changes,
                         stdin=any(c is s for s in with_stdin),
                         prefix=self._audit_prefix(c) if c.changes else "") for c in commands]
        source = with_stdin[0] if with_stdin else None
        started = time.monotonic()
        pending = "".join(self._pending)
        self._pending = []
        results = self.host.run_batch(entries, pending=pending,
                                      stdin=source.stdin if source else None,
                                      stdin_path=source.stdin_path if source else None,
                                      timeout=timeout)
        for command, result in zip(commands, results, strict=False):
            self._verbose(command, result, started)
            if check and command.changes and not result.ok:
                raise failed(list(command.argv), self.redact(command.line),
                             result.returncode, self.redact(result.err), self.host.label,
                             self.redact(result.out))
        if len(results) < len(commands):  # the batch stopped without saying why
            missing = commands[len(results)]
            raise CommandFailed(self.redact(missing.line), -1, "not run", self.host.label)
        return results

    def _single(self, command: Command, *, check: bool, stream: bool,
                timeout: float | None) -> Completed:
        """One command through the audit wrapper (builds: their output streams)."""
        if self.verbose and stream:
            print(f"  {self.host.label}$ {self.redact(command.line)}", file=sys.stderr)
        started = time.monotonic()
        argv = self._audited(command) if self.audit else list(command.argv)
        result = self.host.execute(argv, stdin=command.stdin, stream=stream, timeout=timeout,
                                   stdin_path=command.stdin_path)
        self._verbose(command, result, started)
        if check and not result.ok:
            raise failed(list(command.argv), self.redact(command.line), result.returncode,
                         self.redact(result.err), self.host.label)
        return result

    def interactive(self, command: Command, *, tty: bool) -> int:
        """Attach our terminal (``run``/``exec``): stdout is exactly the command's output."""
        if self.dry_run:
            self._print_change(command)
            return 0
        argv = self._audited(command) if command.changes and self.audit else list(command.argv)
        if self.verbose:
            print(f"  {self.host.label}$ {self.redact(command.line)}", file=sys.stderr)
        return self.host.interactive(argv, tty=tty)

    # -- this machine ----------------------------------------------------------------------
    def local(self, command: Command, *, check: bool = True, stream: bool = False,
              timeout: float | None = None) -> Completed:
        """A command on this machine (the local builder's Docker): shown as ``local$ ...``
        under --dry-run and --verbose. Not in the server's audit log: what it makes reaches
        the server only through an audited command (the pull). Queries run under --dry-run
        too (they change nothing)."""
        if self.dry_run and command.changes:
            self._print(f"local$ {self.redact(command.line)}")
            self._explain(command.why, command.if_fails)
            return _planned(command)
        if self.dry_run:
            self._print(f"# query: local$ {self.redact(command.line)}")
            self._explain(command.why or "read-only: it changes nothing",
                          "nothing changes; Dockyard reports what it could not read")
        from dockyard.host.local import LocalHost

        if self._laptop is None:
            self._laptop = LocalHost()
        if self.verbose and stream:
            print(f"  local$ {self.redact(command.line)}", file=sys.stderr)
        started = time.monotonic()
        result = self._laptop.execute(command.argv, stdin=command.stdin, stream=stream,
                                      timeout=timeout, stdin_path=command.stdin_path)
        self._verbose(command, result, started, where="local")
        if check and not result.ok:
            raise failed(list(command.argv), self.redact(command.line), result.returncode,
                         self.redact(result.err), "this machine", self.redact(result.out))
        return result

    # -- waits -----------------------------------------------------------------------------
    def wait(self, step: Wait[T]) -> T | None:
        """Poll until the step has a value or its time is up (then it raises)."""
        if self.dry_run:
            self._print(f"# wait until {step.what}")
            self._explain(step.why, step.if_fails)
            return step.planned
        clock = self.host.clock
        deadline = clock.now() + step.timeout
        while True:
            value = step.poll()
            if value is not None:
                return value
            if clock.now() >= deadline:
                step.expired()
            clock.sleep(step.interval)

    def probe(self, what: str, check: Callable[[], T], *, planned: T, why: str = "") -> T:
        """A check that is not free to run under --dry-run (it starts a container, which may
        pull an image): run it, or print ``# check: WHAT`` and give ``planned``."""
        if self.dry_run:
            self._print(f"# check: {what}")
            self._explain(why or "a check before the change", "nothing changes; the command "
                          "stops and says what the check found")
            return planned
        return check()

    def download(self, command: Command, path: str) -> Completed:
        """A copy from the server to a local file (a change on this machine): run, or print
        under --dry-run."""
        if self.dry_run:
            self._print(f"{self.redact(command.line)} > {path}")
            self._explain(command.why, command.if_fails or "the partial copy is deleted")
            return _planned(command)
        started = time.monotonic()
        result = self.host.execute(command.argv, stdout_path=path)
        self._verbose(command, result, started)
        return result

    def note(self, line: str, why: str = "", if_fails: str = "") -> None:
        """A comment line of the plan (a copy to this machine, a decision): printed under
        --dry-run."""
        if self.dry_run:
            self._print(line)
            if why:
                self._explain(why, if_fails)

    # -- locks -----------------------------------------------------------------------------
    @contextmanager
    def lock(self, app: str | None, what: str, *, wait: float = 0.0,
             read: Sequence[Fact[Any]] = ()) -> Iterator[list[Any]]:
        """Hold the app's lock (or the server's, ``app=None``) while the block runs; it dies
        with the connection. ``read``: facts read under it, in the same round trip. Under
        --dry-run nothing is locked (the facts are read)."""
        if self.dry_run:
            yield self.read(*read)
            return
        from dockyard.state import lock as locks

        path = locks.lock_path(app)
        info = locks.holder_info(what)
        clock = self.host.clock
        deadline = clock.now() + wait
        while True:
            held = self.host.acquire_lock(path, info, [Entry(f.argv, parallel=True) for f in read])
            if held is not None:
                break
            if clock.now() >= deadline:
                holder = locks.parse_holder(self.host.lock_holder) if self.host.lock_holder \
                    else self.read_one(locks.status(app))[1]
                who = holder.describe() if holder else "another dockyard command"
                target = f"app {app}" if app else "the router"
                raise DockyardError(
                    "DY050", f"{target} on {self.host.label} is locked by {who}; wait for it "
                    "to finish (or, if it is gone, run: dockyard lock release)")
            clock.sleep(0.2)
        self._locks += 1
        try:
            yield [f.parse(_answer(a)) for f, a in zip(read, held.answers, strict=True)]
        finally:
            self._locks -= 1
            # audit lines still pending (finish's closing line) leave with the lock
            last, self._pending = "".join(self._pending).encode(), []
            held.close(last)

    # -- the router's Runtime API ------------------------------------------------------------
    def api(self, call: ApiCall, *, socket: str = "", check: bool = True) -> str:
        """Send one Runtime API line. Changes are printed under --dry-run and audited; a
        query under --dry-run runs when the router is there (an empty answer otherwise)."""
        from dockyard.router import container as router

        socket = socket or router.API_SOCKET
        if self.dry_run:
            prefix = "# query: " if not call.changes else ""
            self._print(f"{prefix}router-api {shlex.quote(call.line)}")
            self._explain(call.why or "a Runtime API call to the router",
                          call.if_fails if call.changes else "nothing changes")
            if call.changes:
                return ""
            try:
                return self.host.api(socket, call.line)
            except DockyardError:
                return ""  # no router yet: this very command would create it
        started = time.monotonic()
        answer = self.host.api(socket, call.line)
        duration = time.monotonic() - started
        failed = call.changes and is_api_error(answer)
        if self.verbose:
            mark = " [failed]" if failed else ""
            print(f"  {self.host.label} router-api> {call.line}  ({duration:.3f}s){mark}",
                  file=sys.stderr)
        if call.changes:
            self.changed = True
        if call.changes and self.audit:
            self._pending.append(self._audit_line(f"router-api {call.line}",
                                                  1 if failed else 0, duration))
        if failed and check:
            raise DockyardError("DY040", f"the router refused: {call.line}: "
                                f"{answer.strip().splitlines()[0] if answer.strip() else '?'}")
        return answer

    def api_stream(self, call: ApiCall, *, socket: str = "") -> Iterator[str]:
        """A Runtime API query that keeps answering (``show events NAME -w``)."""
        from dockyard.router import container as router

        self._show_query(Command(("router-api", call.line), why=call.why, changes=False))
        if self.dry_run:
            return iter(())
        return self.host.api_stream(socket or router.API_SOCKET, call.line)

    def finish(self) -> float:
        """The command's duration, taken once (seconds, one decimal). When it changed the
        server, the audit log gets it too, so `history` shows the same number."""
        if self._took is None:
            self._took = round(max(0.0, self.host.clock.now() - self.started), 1)
            if self.changed and not self.dry_run and self.audit:
                fields: dict[str, object] = {**self._audit_fields("")}
                del fields["command"]  # a closing line: no command, the whole duration
                self._pending.append(_record({**fields, "took_ms": round(self._took * 1000)}))
                if not self._locks:  # under a lock, it leaves with the lock (no round trip)
                    self.flush_audit()
        return self._took

    def flush_audit(self) -> None:
        """Write audit lines still pending (Runtime API changes) now."""
        if not self._pending or self.dry_run:
            return
        self._batch([])

    # -- scripts ----------------------------------------------------------------------------
    def _ensure_scripts(self, commands: Sequence[Command]) -> None:
        if self.scripts_ready or not any(c.installed_script for c in commands):
            return
        if self.scripts_ready is None:
            self.scripts_ready = self.read_one(scripts_installed())
        if self.scripts_ready:
            return
        from dockyard.state.files import tar_of

        body = tar_of(scripts.files(), mode=0o755)
        install = change(
            scripts.inline("write-files", scripts.directory(), str(len(body))),
            f"install this version's scripts in {scripts.directory()} (the commands below "
            "run them by path; read them there)", stdin=body,
            stdin_label=f"<{len(scripts.INSTALLED)} scripts>")
        done = change(["touch", f"{scripts.directory()}/.complete"],
                      "mark the scripts as complete")
        self.scripts_ready = True
        self.change_all([install, done])

    # -- audit -----------------------------------------------------------------------------
    def _batch(self, entries: list[Entry]) -> list[Completed]:
        pending = "".join(self._pending) if not self.dry_run else ""
        self._pending = []
        return self.host.run_batch(entries, pending=pending)

    def _audited(self, command: Command) -> list[str]:
        pending = "".join(self._pending)
        self._pending = []
        return scripts.inline("audit", self._audit_prefix(command), pending) + list(command.argv)

    def _audit_fields(self, line: str) -> dict[str, str]:
        return {"user": self.invocation.user, "invocation": self.invocation.id,
                "subcommand": self.invocation.subcommand, "app": self.invocation.app,
                "command": self.redact(line)}

    def _audit_prefix(self, command: Command) -> str:
        return json.dumps(self._audit_fields(command.line), ensure_ascii=False,
                          separators=(",", ":"))[1:-1]

    def audit_fields(self) -> str:
        """The fields of an audit line without the command, for scripts that write their
        own lines on the server (the retirement of an old release)."""
        fields = self._audit_fields("")
        del fields["command"]
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[1:-1]

    def _audit_line(self, line: str, exit_code: int, duration: float) -> str:
        return _record({**self._audit_fields(line), "exit": exit_code,
                        "duration_ms": round(duration * 1000)})

    # -- output ----------------------------------------------------------------------------
    def _show_query(self, command: Command) -> None:
        if self.dry_run:
            self._print(f"# query: {self.redact(command.line)}")
            self._explain(command.why or "read-only: it changes nothing",
                          "nothing changes; Dockyard reports what it could not read")

    def _print_change(self, command: Command) -> None:
        self._print(self.redact(command.line))
        self._explain(command.why, command.if_fails)

    def _verbose(self, command: Command, result: Completed, started: float,
                 where: str = "") -> None:
        """-v: each command as it ran, where (the server's label, or "local"), how long."""
        if self.verbose:
            mark = "" if result.ok else f" [exit {result.returncode}]"
            took = result.duration or (time.monotonic() - started)
            print(f"  {where or self.host.label}$ {self.redact(command.line)}  ({took:.2f}s)"
                  f"{mark}", file=sys.stderr)

    def _explain(self, why: str, if_fails: str) -> None:
        if not self.explain:
            return
        self.out.write(f"    # why: {self.redact(why or 'a step of this command')}\n")
        self.out.write(f"    # if it fails: {self.redact(if_fails or self.on_failure)}\n")

    def _print(self, line: str) -> None:
        # plain write: commands are one line each, never wrapped, no markup interpretation;
        # in a cluster each line says which host it runs on
        self.out.write(self.where + line + "\n")
        self.out.flush()


def _planned(command: Command) -> Completed:
    return Completed(0, command.planned.encode(), b"", 0.0, planned=True)


def _answer(result: Completed) -> Answer:
    return Answer(result.returncode, result.out, result.err)


__all__ = ["Invocation", "Runner", "paths"]


def _record(fields: dict[str, object]) -> str:
    """One audit log line: the time now, then ``fields``, as compact JSON."""
    return json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields},
                      ensure_ascii=False, separators=(",", ":")) + "\n"
