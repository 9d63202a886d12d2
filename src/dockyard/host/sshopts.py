"""The OpenSSH options of every connection Dockyard opens, and where its sockets live.

Standard library only: ``preconnect`` builds the same options before the rest of Dockyard is
imported (host/preconnect.py says why).
"""

from __future__ import annotations

import os
from pathlib import Path


class ControlDirError(Exception):
    """The socket directory belongs to someone else."""


def dockyard_dir() -> Path:
    """Dockyard's own files on the laptop (known_hosts)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dockyard"


#: UNIX socket paths are limited to 108 bytes; "<pid>-%C" expands to about 48 characters.
_MAX_SOCKET_DIR = 52


def runtime_dir() -> Path:
    """Where Dockyard keeps its sockets and lock files on this machine (not created here)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or str(Path.home() / ".cache")
    return Path(base) / "dockyard"


def control_dir() -> Path:
    """A private 0700 directory for ControlMaster sockets: nobody else may reuse them."""
    path = runtime_dir() / "ssh"
    if len(str(path)) > _MAX_SOCKET_DIR:
        path = Path("/tmp") / f"dockyard-ssh-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid != os.getuid():
        raise ControlDirError(f"{path} belongs to another user; remove it or set "
                              "XDG_RUNTIME_DIR to a private directory")
    path.chmod(0o700)
    return path


def known_hosts() -> Path:
    return dockyard_dir() / "known_hosts"


def options(port: int | None, *, connect_timeout: float, persist: str) -> list[str]:
    """One master per dockyard process (the ControlPath has its pid): two commands at once
    never share, or close, each other's connection."""
    user_known = Path.home() / ".ssh" / "known_hosts"
    known = " ".join(f'"{p}"' for p in (known_hosts(), user_known))
    opts = [
        "-o", "ControlMaster=auto",
        "-o", f"ControlPath={control_dir()}/{os.getpid()}-%C",
        "-o", f"ControlPersist={persist}",
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=accept-new",
        "-o", f"UserKnownHostsFile={known}",
        "-o", f"ConnectTimeout={max(1, round(connect_timeout))}",
        "-o", "ServerAliveInterval=10",
        "-o", "ServerAliveCountMax=3",
        "-o", "LogLevel=ERROR",
        # the master binds forwarded sockets (Runtime API): replace stale socket files
        "-o", "StreamLocalBindUnlink=yes",
    ]
    if port:
        opts += ["-p", str(port)]
    return opts
