"""The one way Dockyard writes files on a server: several files in one command, received
whole, each replaced by a rename (scripts/write-files.sh), so a dropped connection never
leaves half a file and a reader sees the old file or the new one.

Every state file goes through here: release records, env files (0600, through stdin
only), route.json, the router's configuration (under the router lock, only if the routes
are still the ones it was computed from), the proxy settings, the scripts themselves.
"""

from __future__ import annotations

import io
import tarfile
import time

from dockyard import scripts
from dockyard.host.command import Command, change


def tar_of(files: dict[str, bytes], *, mode: int = 0o600,
           modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = (modes or {}).get(name, mode)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def write_files(directory: str, files: dict[str, bytes], why: str, *, mode: int = 0o600,
                modes: dict[str, int] | None = None, label: str = "",
                routes_digest: str | None = None, if_fails: str = "") -> Command:
    """Write ``files`` (paths relative to ``directory``). ``routes_digest``: write under the
    router lock, only if the server's routes still hash to it (exit 75 otherwise)."""
    body = tar_of(files, mode=mode, modes=modes)
    args = [directory, str(len(body))] + ([routes_digest] if routes_digest else [])
    return change(scripts.argv("write-files", *args), why, stdin=body,
                  stdin_label=label or f"<files: {', '.join(sorted(files))}>",
                  if_fails=if_fails)
