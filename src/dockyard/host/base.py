"""The Host interface: where commands run, and the ways they travel.

Two real implementations (SshHost: the system OpenSSH client, multiplexed; LocalHost: this
machine's Docker engine) and a fake one for tests (tests/fake.py). Everything above this
layer is the same for all three. Four ways to reach a server:

- ``execute``: one command (builds stream their output; downloads go to a file);
- ``run_batch``: several commands in one round trip (scripts/batch.sh), each with its own
  exit code, output and audit line;
- ``acquire_lock``: a lock held while Dockyard runs (scripts/lock.sh), with the facts the
  command needs read under it in the same round trip;
- ``api``: one line to the router's Runtime API (a UNIX socket on the server).
"""

from __future__ import annotations

import json
import os
import socket as socket_module
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from dockyard.errors import DockyardError, HostError
from dockyard.host.spec import HostSpec

#: When set (tests), every argv spawned on this machine is appended to this file as JSON,
#: so a test can prove no secret ever appeared in a process's arguments.
ARGV_LOG_ENV = "DOCKYARD_ARGV_LOG"
#: A lock held by another process (lock.sh's exit code).
BUSY = 75


@dataclass
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes
    duration: float
    #: not run: the plan's stand-in for a command under --dry-run
    planned: bool = False

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Entry:
    """One command of a batch: its argv and how the batch treats it."""

    argv: tuple[str, ...]
    audit: bool = False  # append a line to the server's audit log
    check: bool = False  # stop the batch when it fails
    stdin: bool = False  # reads the batch's stdin (one entry at most)
    prefix: str = ""  # the audit line's fields
    parallel: bool = False  # a read: runs at the same time as the reads next to it

    @property
    def flags(self) -> str:
        return ("a" if self.audit else "") + ("c" if self.check else "") + (
            "i" if self.stdin else "") + ("p" if self.parallel else "") or "-"


@dataclass
class Held:
    """A lock while held; ``answers`` are the facts read under it."""

    release: object = None
    answers: list[Completed] = field(default_factory=list)

    def close(self, last: bytes = b"") -> None:
        """Let go. ``last``: audit lines the lock's process appends to the audit log before
        it ends (a command's closing line: no extra round trip)."""
        proc = self.release
        self.release = None
        if callable(proc):  # a lock that is not a process (the fake server's)
            proc(last)
        elif isinstance(proc, subprocess.Popen):
            try:
                if proc.stdin:
                    if last:
                        proc.stdin.write(last)
                    proc.stdin.close()
                proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()


class Clock:
    """Time as the flows see it: waits and deadlines go through here, so tests run them on a
    fake server in no time."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class Host(ABC):
    """Where commands run. Subclasses say how to spawn an argv there and reach a socket."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec
        self._api_path: str | None = None
        self.clock = Clock()
        #: the holder's line (pid and JSON) of the last lock found taken, "" when not known
        self.lock_holder = ""

    @property
    def label(self) -> str:
        return self.spec.label

    @abstractmethod
    def spawn_argv(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs ``argv`` on the host."""

    def check_transport(self, result: Completed) -> None:
        """Raise a HostError when the failure was the connection, not the command."""

    def close(self) -> None:
        """Release connections (the SSH master)."""

    def api_socket(self, remote_path: str) -> str:
        """A local path connected to the UNIX socket ``remote_path`` on the host."""
        return remote_path

    def reverse_forward(self, local_port: int) -> int:
        """A loopback port on the server forwarded to ``local_port`` here (SSH hosts)."""
        raise NotImplementedError(f"{type(self).__name__} cannot forward ports")

    def local_forward(self, local_port: int, remote_port: int) -> None:
        """A port on this machine forwarded to one on the server's loopback (SSH only)."""
        raise NotImplementedError(f"{type(self).__name__} cannot forward ports")

    def cancel_local_forward(self, local_port: int, remote_port: int) -> None:
        """Stop what local_forward started."""

    def cancel_reverse_forward(self, local_port: int) -> None:
        """Stop what reverse_forward started."""

    def spawn_argv_tty(self, argv: Sequence[str], tty: bool) -> list[str]:
        """Like spawn_argv, for interactive commands (a TTY when ``tty``)."""
        return self.spawn_argv(argv)

    # -- one command ---------------------------------------------------------------------
    def interactive(self, argv: Sequence[str], *, tty: bool) -> int:
        """Run with our stdin/stdout/stderr attached; returns the exit code."""
        local = self.spawn_argv_tty(argv, tty)
        _record(local)
        try:
            return subprocess.call(local)
        except KeyboardInterrupt:
            return 130

    def background(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """Start a long-running command whose life is tied to ours (and the connection's):
        its stdin is a pipe we hold; closing it, or dying, ends the command."""
        local = self.spawn_argv(argv)
        _record(local)
        return subprocess.Popen(local, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def execute(self, argv: Sequence[str], *, stdin: bytes | None = None,
                stream: bool = False, timeout: float | None = None,
                stdin_path: str | None = None, stdout_path: str | None = None) -> Completed:
        """Run ``argv`` on the host. ``stream`` copies its output to ours as it arrives;
        ``stdout_path`` writes it to that local file instead (downloads)."""
        local = self.spawn_argv(argv)
        _record(local)
        started = time.monotonic()
        infile = open(stdin_path, "rb") if stdin_path else None  # noqa: SIM115
        outfile = open(stdout_path, "wb") if stdout_path else None  # noqa: SIM115
        proc = subprocess.Popen(
            local,
            stdin=infile or (subprocess.PIPE if stdin is not None else subprocess.DEVNULL),
            stdout=outfile or (None if stream else subprocess.PIPE),
            stderr=subprocess.PIPE,
        )
        if infile:
            infile.close()
        if outfile:
            outfile.close()
        try:
            out, err = proc.communicate(input=stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            err = (err or b"") + f"\ntimed out after {timeout:g}s".encode()
            result = Completed(124, out or b"", err, time.monotonic() - started)
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            raise
        else:
            result = Completed(proc.returncode, out or b"", err or b"", time.monotonic() - started)
        if stream and result.stderr:
            sys.stderr.buffer.write(result.stderr)
            sys.stderr.flush()
        self.check_transport(result)
        return result

    # -- several commands, one round trip -------------------------------------------------
    def run_batch(self, entries: Sequence[Entry], *, pending: str = "",
                  stdin: bytes | None = None, stdin_path: str | None = None,
                  timeout: float | None = None) -> list[Completed]:
        """Run ``entries`` in order in one round trip; one Completed per entry that ran
        (entries after a failed ``check`` one did not run: the list is shorter)."""
        from dockyard import scripts

        argv = [*scripts.inline("batch", pending, str(len(entries))), *batch_words(entries)]
        result = self.execute(argv, stdin=stdin, stdin_path=stdin_path, timeout=timeout)
        if not result.ok and not result.stdout:
            raise DockyardError("DY020", f"a batch of {len(entries)} commands failed on "
                                f"{self.label} (exit {result.returncode}): "
                                f"{_tail(result.err)}")
        return parse_frames(result.stdout, len(entries))

    # -- a lock held while we run ---------------------------------------------------------
    def acquire_lock(self, path: str, info: str, entries: Sequence[Entry] = ()) -> Held | None:
        """Take the lock at ``path`` (None when another process holds it), and read
        ``entries`` under it in the same round trip."""
        from dockyard import scripts

        argv = scripts.inline("lock", path, info)
        if entries:
            argv += [scripts.source("batch"), "", str(len(entries)), *batch_words(entries)]
        proc = self.background(argv)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if first.strip() != b"locked":
            proc.wait(timeout=30)
            err = proc.stderr.read() if proc.stderr else b""
            # a connection that failed is a connection error (DY010...), not a lock one
            self.check_transport(Completed(proc.returncode, b"", err, 0.0))
            if proc.returncode == BUSY:
                # who holds it, as lock.sh read it when it found the lock taken
                self.lock_holder = first.decode(errors="replace").strip()
                return None
            raise DockyardError("DY050", f"could not take the lock on {self.label}: "
                                f"{_tail(err.decode(errors='replace')) or f'exit {proc.returncode}'}")
        data = b""
        while True:  # frames (a header line, then exactly its bytes) until "\036end"
            line = proc.stdout.readline()
            if not line or line == b"\x1eend\n":
                break
            data += line
            fields = line[1:].split()
            if line[:1] == b"\x1e" and len(fields) == 5:
                data += proc.stdout.read(int(fields[3]) + int(fields[4]))
        return Held(proc, parse_frames(data, len(entries)) if entries else [])

    # -- the router's Runtime API ---------------------------------------------------------
    def api_stream(self, remote_socket: str, line: str) -> Iterator[str]:
        """A Runtime API command that keeps answering, line by line."""
        if self._api_path is None:
            self._api_path = self.api_socket(remote_socket)
        try:
            yield from stream_lines(self._api_path, line)
        except OSError as exc:
            raise HostError("DY041", f"lost the connection to the router's Runtime API on "
                            f"{self.label} ({exc})") from None

    def api(self, remote_socket: str, line: str, *, timeout: float = 10.0) -> str:
        """One Runtime API exchange. HostError (DY041) when the router cannot be reached."""
        if self._api_path is None:
            self._api_path = self.api_socket(remote_socket)
        try:
            return api_request(self._api_path, line, timeout)
        except OSError as exc:
            raise HostError("DY041", f"lost the connection to the router's Runtime API on "
                            f"{self.label} ({exc}); the router keeps its last state: run "
                            "the command again") from None


def stream_lines(path: str, line: str) -> Iterator[str]:
    """A Runtime API command that keeps answering (``show events NAME -w``): its lines as
    they come, until the router closes the connection or the caller stops."""
    with socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")
        pending = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                yield raw.decode("utf-8", "replace")
        if pending:
            yield pending.decode("utf-8", "replace")


def batch_words(entries: Sequence[Entry]) -> list[str]:
    words: list[str] = []
    for entry in entries:
        words += [entry.flags, entry.prefix, str(len(entry.argv)), *entry.argv]
    return words


def parse_frames(data: bytes, count: int) -> list[Completed]:
    """batch.sh's output: ``\\036INDEX EXIT MS OUT ERR\\n`` then the bytes of each."""
    out: list[Completed] = []
    pos = 0
    while pos < len(data) and len(out) < count:
        if data[pos:pos + 1] != b"\x1e":
            raise DockyardError("DY020", "could not read the server's answer (a batch frame "
                                "is damaged); run the command again")
        end = data.index(b"\n", pos)
        fields = data[pos + 1:end].split()
        _, code, ms, n_out, n_err = (int(f) for f in fields)
        body = end + 1
        stdout = data[body:body + n_out]
        stderr = data[body + n_out:body + n_out + n_err]
        out.append(Completed(code, stdout, stderr, ms / 1000))
        pos = body + n_out + n_err
    return out


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


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _record(argv: list[str]) -> None:
    path = os.environ.get(ARGV_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(argv) + "\n")
