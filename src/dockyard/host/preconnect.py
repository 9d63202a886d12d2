"""Open the SSH connection while Python imports the rest of Dockyard.

A command that talks to the server spends about 0.4 s on the SSH handshake and about 0.5 s
importing Dockyard (pydantic, typer, the flows). Done one after the other they are most of
what a small redeploy costs beyond its build and boot. So the entry point, before any other
import, reads ``[server] host`` from the config file (tomllib, a strict pattern) and starts
this process's ControlMaster in the background (``ssh -N``, the same options as every later
command); ``SshHost`` waits for it before its first command. Anything unusual (no config,
another host syntax, a command that needs no server, DOCKYARD_NO_PRECONNECT=1) and nothing
starts: the usual path connects and reports errors as always. Standard library only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from dockyard.host import sshopts

#: Commands that never connect to a server.
OFFLINE = {"version", "config", "init"}
#: Global options that take a value (cli/main.py: GLOBAL_OPTIONS).
VALUED = {"-c", "--config"}
_HOST = re.compile(r"ssh://(?:(?P<user>[a-z_][a-z0-9_.-]{0,31})@)?"
                   r"(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?)"
                   r"(?::(?P<port>[1-9][0-9]{0,4}))?")


@dataclass
class Pending:
    destination: str
    port: int | None
    argv: list[str]
    proc: subprocess.Popen[bytes]


_pending: list[Pending] = []


def plan(args: list[str], cwd: Path) -> tuple[str, int | None] | None:
    """(destination, port) to connect to for this command line, or None."""
    config = Path("dockyard.toml")
    command = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--" or arg in ("-h", "--help"):
            break
        if arg in VALUED:
            if i + 1 >= len(args):
                return None
            config = Path(args[i + 1])
            i += 2
            continue
        if arg.startswith("--config="):
            config = Path(arg.split("=", 1)[1])
        elif not arg.startswith("-") and command is None:
            command = arg
        i += 1
    if command is None or command in OFFLINE or "--help" in args or "-h" in args:
        return None
    path = config if config.is_absolute() else cwd / config
    try:
        with path.open("rb") as fh:
            if os.fstat(fh.fileno()).st_size > 1 << 20:
                return None
            data = tomllib.load(fh)
    except (OSError, ValueError, RecursionError):
        return None
    server = data.get("server")
    host = server.get("host") if isinstance(server, dict) else None
    match = _HOST.fullmatch(host) if isinstance(host, str) else None
    if match is None:
        return None
    user, name, port = match.group("user"), match.group("host"), match.group("port")
    number = int(port) if port else None
    if number is not None and number > 65535:
        return None
    return (f"{user}@{name}" if user else name), number


def start(args: list[str]) -> None:
    """Start the master for this command line, if it will connect (see the module doc)."""
    if os.environ.get("DOCKYARD_NO_PRECONNECT") or shutil.which("ssh") is None:
        return
    try:
        target = plan(args, Path.cwd())
        if target is None:
            return
        destination, port = target
        # connect_timeout and persist as SshHost's defaults; the master is shared by socket
        opts = sshopts.options(port, connect_timeout=5.0, persist="60s")
        sshopts.known_hosts().parent.mkdir(parents=True, exist_ok=True)
    except (OSError, sshopts.ControlDirError):
        return
    argv = ["ssh", *opts, "-o", "ControlMaster=yes", "-N", "--", destination]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _pending.append(Pending(destination, port, argv, proc))
    if len(_pending) == 1:
        atexit.register(_close_unclaimed)


def claim(destination: str, port: int | None, timeout: float) -> None:
    """Wait until the early master for this destination is up (or has failed: the command
    then connects as usual and reports why). A no-op when none was started."""
    for pending in list(_pending):
        if pending.destination == destination and pending.port == port:
            _pending.remove(pending)
            try:
                pending.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pending.proc.kill()
                pending.proc.wait()


def _close_unclaimed() -> None:
    """A master nobody used (the command stopped before connecting): closed, not left for
    ControlPersist to time out."""
    for pending in _pending:
        with contextlib.suppress(subprocess.TimeoutExpired):
            pending.proc.wait(timeout=15)
        if pending.proc.returncode == 0:
            control = [a for a in pending.argv if a not in ("-N",)]
            control = [*control[: control.index("--")], "-O", "exit", "--",
                       pending.destination]
            subprocess.run(control, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False, timeout=10)
    _pending.clear()
