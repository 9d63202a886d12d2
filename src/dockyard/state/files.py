"""Writing state files on the server: several files in one command, each replaced by a
rename, so a dropped connection never leaves half a file."""

from __future__ import annotations

import io
import shlex
import tarfile
import time

from dockyard.host.command import Command, change


def write_files(directory: str, files: dict[str, bytes], why: str, *, mode: int = 0o600,
                label: str = "") -> Command:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(files[name]))
    names = " ".join(shlex.quote(n) for n in sorted(files))
    d = shlex.quote(directory)
    script = (
        f"set -e; umask 077; mkdir -p {d}; tmp=$(mktemp -d {d}/.new.XXXXXX); "
        f'tar -x --no-same-owner -f - -C "$tmp"; '
        f'for f in {names}; do mkdir -p "{directory}/$(dirname "$f")"; '
        f'mv "$tmp/$f" "{directory}/$f"; done; rm -rf "$tmp"'
    )
    return change(["sh", "-c", script], why, stdin=buf.getvalue(),
                  stdin_label=label or f"<files: {', '.join(sorted(files))}>")
