"""Backups of accessories, as files on the server: one command each, readable by hand.

``/var/lib/dockyard/backups/<app>/<name>/<id>.<ext>`` with ``<id>.<ext>.sha256`` next to
it. The id is ``<UTC time>-<why>`` (manual, scheduled, pre-restore, pre-upgrade, upload),
so a directory listing is the history. The same script takes manual backups (over SSH) and
scheduled ones (in the cron container, which has the docker client and the state
directory): there is one way to take a backup.

- postgres: ``pg_dump -Fc`` inside the container (consistent: one transaction snapshot);
- redis: ``SAVE`` (a fresh RDB snapshot), then the RDB file is copied out;
- volume: the accessory is stopped, its volumes are tarred by a tools container, and it is
  started again even when the copy fails.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from dockyard import scripts
from dockyard.host.command import Command, Fact, change, fact, query

from .spec import Accessory

EXTENSIONS = {"postgres": "pgdump", "redis": "rdb", "volume": "tar"}
BACKUP_NAME = re.compile(r"(?P<id>(?P<stamp>[0-9]{8}T[0-9]{6}Z)-(?P<why>[a-z]+(?:-[a-z]+)*))"
                         r"\.(?P<ext>pgdump|rdb|tar)")


@dataclass(frozen=True)
class Backup:
    """One backup file on the server."""

    id: str
    file: str
    time: str
    why: str
    size: int
    sha256: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_line(line: str) -> Backup | None:
    parts = line.split()
    if len(parts) != 3 or not re.fullmatch(r"[0-9]{1,20}", parts[1]):
        return None
    m = BACKUP_NAME.fullmatch(parts[0])
    if m is None:
        return None
    s = m["stamp"]
    when = f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:15]}Z"
    return Backup(m["id"], parts[0], when, m["why"], int(parts[1]), parts[2])


def parse_list(text: str) -> list[Backup]:
    """Oldest first (ids sort by time)."""
    found = [b for line in text.split("\n") if (b := parse_line(line)) is not None]
    return sorted(found, key=lambda b: b.file)


def tar_mounts(acc: Accessory) -> list[str]:
    """``-v`` arguments that put each of the accessory's volumes under /backup/<n>."""
    out = []
    for i, m in enumerate(acc.mounts()):
        out.append(f"--volume={m.source}:/backup/{i}")
    return out


def script_args(acc: Accessory, why: str, keep: int, tools_image: str) -> list[str]:
    return [acc.app, acc.name, acc.kind, acc.container, why, str(keep), tools_image,
            *(tar_mounts(acc) if acc.kind == "volume" else [])]


#: What a backup command prints under --dry-run (it parses like a real result line).
PLANNED = "00000000T000000Z-{why}.{ext} 0 " + "0" * 64


def take(acc: Accessory, why: str, tools_image: str) -> Command:
    how = {"postgres": "pg_dump -Fc inside the container (one consistent snapshot)",
           "redis": "a fresh RDB snapshot (SAVE), copied out",
           "volume": "a tar of its volumes, taken while it is stopped"}[acc.kind]
    return change(scripts.argv("backup", *script_args(acc, why, 0, tools_image)),
                  f"back up {acc.name}: {how}, to {acc.backup_dir}/ with its SHA-256",
                  if_fails="no backup is kept (the partial file is deleted); the accessory "
                  "keeps running, or is started again",
                  planned=PLANNED.format(why=why, ext=EXTENSIONS[acc.kind]))


def listing(acc: Accessory) -> Fact[list[Backup]]:
    return fact(scripts.inline("list-backups", acc.backup_dir), lambda a: parse_list(a.out),
                f"list {acc.name}'s backups")


def restore(acc: Accessory, backup: Backup, tools_image: str) -> Command:
    how = {"postgres": "pg_restore --clean --single-transaction into the running database",
           "redis": "the RDB file replaces the data file, and Redis restarts to load it",
           "volume": "it is stopped, its volumes are emptied and refilled from the tar, and "
                     "it is started again"}[acc.kind]
    args = [acc.app, acc.name, acc.kind, acc.container, acc.backup_dir, backup.file,
            tools_image, *(tar_mounts(acc) if acc.kind == "volume" else [])]
    return change(scripts.argv("restore", *args),
                  f"restore {acc.name} from {backup.id}: {how}")


def download(acc: Accessory, backup: Backup) -> Command:
    return query(scripts.inline("download", acc.backup_dir, backup.file),
                 f"copy {backup.file} to this machine",
                 )


def upload(acc: Accessory, local: Path, file: str) -> Command:
    return change(scripts.argv("upload", acc.backup_dir, file),
                  f"upload {local.name} to {acc.backup_dir}/{file} and record its SHA-256",
                  stdin_path=str(local), stdin_label=f"<{local.name}>",
                  planned=f"{file} 0 " + "0" * 64)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_kind(head: bytes) -> str | None:
    """What a backup file holds, from its first bytes."""
    if head.startswith(b"PGDMP"):
        return "postgres"
    if head.startswith(b"REDIS"):
        return "redis"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "volume"
    return None
