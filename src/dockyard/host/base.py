"""The Host interface: run one argv on the server and return what happened.

Two implementations: SshHost (the system OpenSSH client, multiplexed) and LocalHost (this
machine's Docker engine). Everything above this layer is the same for both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from dockyard.host.spec import HostSpec

#: When set (tests), every argv spawned on this machine is appended to this file as JSON,
#: so a test can prove no secret ever appeared in a process's arguments.
ARGV_LOG_ENV = "DOCKYARD_ARGV_LOG"


@dataclass
class Completed:
    returncode: int
    stdout: bytes
    stderr: bytes
    duration: float

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Host(ABC):
    """Where commands run. Subclasses only say how to spawn an argv there."""

    def __init__(self, spec: HostSpec) -> None:
        self.spec = spec

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

    def spawn_argv_tty(self, argv: Sequence[str], tty: bool) -> list[str]:
        """Like spawn_argv, for interactive commands (a TTY when ``tty``)."""
        return self.spawn_argv(argv)

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


def _record(argv: list[str]) -> None:
    path = os.environ.get(ARGV_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(argv) + "\n")
