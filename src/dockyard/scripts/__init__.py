"""The shell that runs on the server or in a helper container, kept in .sh files here
(POSIX sh, checked by shellcheck in CI) instead of strings in Python.

Two ways a script reaches the server:

- **installed**: the scripts that change something are written once per Dockyard version
  to ``/var/lib/dockyard/scripts/<version>/`` (the Runner does it before the first command
  that needs them), and commands run them by path, so ``--dry-run``, ``-v`` and the audit
  log show ``sh /var/lib/dockyard/scripts/3f2a.../retire.sh ARGS``, a file a person can read
  on the server;
- **inline**: the few that must work before anything is installed (the batch runner, the
  lock, the audit wrapper, the read-only readers) travel as ``sh -c SOURCE NAME ARGS``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from dockyard.state import paths

#: Installed under /var/lib/dockyard/scripts/<version>/ and run by path.
INSTALLED = ("write-files", "retire", "spawn", "build", "prune", "backup", "restore", "upload",
             "pull", "swarm-join")
#: Sent with each use (read-only, or needed before the install; write-files installs the
#: others).
INLINE = ("batch", "lock", "audit", "read-app", "read-routes", "list-backups", "download",
          "ready", "write-files", "lock-status", "read-env", "cert-status", "which",
          "start-docker", "read-audit", "kept", "check-host", "chain", "server-status",
          "server-prune")
#: Copied into helper containers' directories by their own flows.
CONTAINER = ("certs", "scheduled", "crond", "cron-job", "notify")


@cache
def source(name: str) -> str:
    return (resources.files(__package__) / f"{name}.sh").read_text(encoding="utf-8")


@cache
def version() -> str:
    """Changes whenever an installed script changes: a new directory, never an edit in place
    (two laptops with two versions of Dockyard never change each other's scripts)."""
    digest = hashlib.sha256()
    for name in INSTALLED:
        digest.update(name.encode() + b"\0" + source(name).encode() + b"\0")
    return digest.hexdigest()[:12]


def directory() -> str:
    return f"{paths.ROOT}/scripts/{version()}"


def path(name: str) -> str:
    assert name in INSTALLED, name
    return f"{directory()}/{name}.sh"


def argv(name: str, *args: str) -> list[str]:
    """Run an installed script."""
    return ["sh", path(name), *args]


def inline(name: str, *args: str) -> list[str]:
    """Send a script with its arguments; ``$0`` is ``dockyard-NAME`` (how it is known in
    process lists, and how the fake server recognises it)."""
    assert name in INLINE, name
    return ["sh", "-c", source(name), f"dockyard-{name}", *args]


def files() -> dict[str, bytes]:
    """What an install writes, relative to directory()."""
    return {f"{name}.sh": source(name).encode() for name in INSTALLED}
