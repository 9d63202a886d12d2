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

from dockyard.host.command import Command, change, query

from .spec import Accessory

EXTENSIONS = {"postgres": "pgdump", "redis": "rdb", "volume": "tar"}
BACKUP_NAME = re.compile(r"(?P<id>(?P<stamp>[0-9]{8}T[0-9]{6}Z)-(?P<why>[a-z]+(?:-[a-z]+)*))"
                         r"\.(?P<ext>pgdump|rdb|tar)")
#: The same grammar in sh: a backup file is named by its id, never a path (checked by every
#: script that is given one, as the CLI checks the id before connecting).
SH_CHECK_FILE = r"""case $file in
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.pgdump|\
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.rdb|\
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.tar) ;;
  *) echo "not a backup file name: $file" >&2; exit 2 ;;
esac
case $file in */*|*[!a-zA-Z0-9.-]*) echo "not a backup file name: $file" >&2; exit 2 ;; esac
"""
PG_DUMP = ('exec pg_dump -Fc -U "${POSTGRES_USER:-postgres}" '
           '"${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"')
PG_RESTORE = ('exec pg_restore --clean --if-exists --single-transaction --no-owner '
              '-U "${POSTGRES_USER:-postgres}" -d "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"')

BACKUP_SCRIPT = r"""set -eu
app=$1; name=$2; kind=$3; ctr=$4; why=$5; keep=$6; tools=$7; shift 7
dir=/var/lib/dockyard/backups/$app/$name
umask 077
mkdir -p "$dir"
stamp() { date -u +%Y%m%dT%H%M%SZ; }
id=$(stamp)-$why
while ls "$dir" | grep -q "^$id\."; do sleep 1; id=$(stamp)-$why; done
case $kind in postgres) ext=pgdump ;; redis) ext=rdb ;; *) ext=tar ;; esac
tmp=$dir/.$id.$ext.partial
trap 'rm -f "$tmp"' EXIT
case $kind in
postgres)
  docker exec "$ctr" sh -c '__PG_DUMP__' > "$tmp" ;;
redis)
  out=$(docker exec "$ctr" redis-cli SAVE)
  [ "$out" = OK ] || { echo "redis-cli SAVE answered: $out" >&2; exit 1; }
  rdir=$(docker exec "$ctr" redis-cli --raw CONFIG GET dir | sed -n 2p)
  rfile=$(docker exec "$ctr" redis-cli --raw CONFIG GET dbfilename | sed -n 2p)
  docker exec "$ctr" cat "$rdir/$rfile" > "$tmp" ;;
*)
  echo "stopping $ctr while its volumes are copied" >&2
  docker stop "$ctr" >/dev/null
  rc=0
  docker run --rm --network=none --label="dockyard.app=$app" "$@" -- "$tools" \
    tar -C /backup -cf - . > "$tmp" || rc=$?
  docker start "$ctr" >/dev/null
  echo "started $ctr again" >&2
  [ "$rc" = 0 ] || exit "$rc" ;;
esac
[ -s "$tmp" ] || { echo "the dump is empty" >&2; exit 1; }
sum=$(sha256sum "$tmp" | cut -d' ' -f1)
size=$(wc -c < "$tmp" | tr -d ' ')
mv "$tmp" "$dir/$id.$ext"
echo "$sum  $id.$ext" > "$dir/$id.$ext.sha256"
trap - EXIT
if [ "$why" = scheduled ]; then
  ls "$dir" | grep -E '^[0-9]{8}T[0-9]{6}Z-scheduled\.[a-z]+$' | sort -r | tail -n +$((keep + 1)) |
    while read -r old; do rm -f "$dir/$old" "$dir/$old.sha256"; echo "deleted $old (keep $keep)" >&2; done
fi
echo "$id.$ext $size $sum"
""".replace("__PG_DUMP__", PG_DUMP)

RESTORE_SCRIPT = r"""set -eu
app=$1; name=$2; kind=$3; ctr=$4; dir=$5; file=$6; tools=$7; shift 7
__CHECK_FILE__file=$dir/$file
[ -f "$file" ] || { echo "no such backup: $file" >&2; exit 3; }
case $kind in
postgres)
  docker exec -i "$ctr" sh -c '__PG_RESTORE__' < "$file" ;;
redis)
  aof=$(docker exec "$ctr" redis-cli --raw CONFIG GET appendonly | sed -n 2p)
  if [ "$aof" = yes ]; then
    echo "$ctr runs with appendonly yes: Redis would load its AOF, not the restored" \
      "RDB file; turn appendonly off to restore" >&2
    exit 1
  fi
  docker exec -i "$ctr" sh -c '
    d=$(redis-cli --raw CONFIG GET dir | sed -n 2p)
    f=$(redis-cli --raw CONFIG GET dbfilename | sed -n 2p)
    cat > "$d/.dockyard-restore.rdb"
    chown "$(stat -c %u:%g "$d")" "$d/.dockyard-restore.rdb"
    redis-cli CONFIG SET save "" >/dev/null
    mv "$d/.dockyard-restore.rdb" "$d/$f"' < "$file"
  # SIGKILL: a normal shutdown would save the old data over the restored file
  docker kill -s KILL "$ctr" >/dev/null 2>&1 || :
  docker start "$ctr" >/dev/null ;;
*)
  echo "stopping $ctr while its volumes are replaced" >&2
  docker stop "$ctr" >/dev/null
  rc=0
  docker run --rm -i --network=none --label="dockyard.app=$app" "$@" -- "$tools" sh -c \
    'for d in /backup/*; do rm -rf "$d"/* "$d"/.[!.]* "$d"/..?*; done; tar -C /backup -xf -' \
    < "$file" || rc=$?
  docker start "$ctr" >/dev/null
  [ "$rc" = 0 ] || exit "$rc" ;;
esac
"""
RESTORE_SCRIPT = (RESTORE_SCRIPT.replace("__PG_RESTORE__", PG_RESTORE)
                  .replace("__CHECK_FILE__", SH_CHECK_FILE))

DOWNLOAD_SCRIPT = r"""set -eu
dir=$1; file=$2
__CHECK_FILE__exec cat "$dir/$file"
""".replace("__CHECK_FILE__", SH_CHECK_FILE)

LIST_SCRIPT = r"""dir=$1
cd "$dir" 2>/dev/null || exit 0
for f in *; do
  case $f in *.sha256) continue ;; esac
  [ -f "$f" ] || continue
  sum=$(cut -d' ' -f1 "$f.sha256" 2>/dev/null || echo -)
  echo "$f $(wc -c < "$f" | tr -d ' ') $sum"
done
"""

UPLOAD_SCRIPT = r"""set -eu
dir=$1; file=$2
umask 077
mkdir -p "$dir"
tmp=$dir/.$file.partial
trap 'rm -f "$tmp"' EXIT
cat > "$tmp"
sum=$(sha256sum "$tmp" | cut -d' ' -f1)
mv "$tmp" "$dir/$file"
echo "$sum  $file" > "$dir/$file.sha256"
trap - EXIT
echo "$file $(wc -c < "$dir/$file" | tr -d ' ') $sum"
"""


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
    found = [b for line in text.splitlines() if (b := parse_line(line)) is not None]
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


def take(acc: Accessory, why: str, tools_image: str) -> Command:
    how = {"postgres": "pg_dump -Fc inside the container (one consistent snapshot)",
           "redis": "a fresh RDB snapshot (SAVE), copied out",
           "volume": "a tar of its volumes, taken while it is stopped"}[acc.kind]
    return change(["sh", "-c", BACKUP_SCRIPT, "dockyard-backup",
                   *script_args(acc, why, 0, tools_image)],
                  f"back up {acc.name}: {how}, to {acc.backup_dir}/ with its SHA-256")


def listing(acc: Accessory) -> Command:
    return query(["sh", "-c", LIST_SCRIPT, "dockyard-backups", acc.backup_dir],
                 f"list {acc.name}'s backups")


def restore(acc: Accessory, backup: Backup, tools_image: str) -> Command:
    how = {"postgres": "pg_restore --clean --single-transaction into the running database",
           "redis": "the RDB file replaces the data file, and Redis restarts to load it",
           "volume": "it is stopped, its volumes are emptied and refilled from the tar, and "
                     "it is started again"}[acc.kind]
    args = [acc.app, acc.name, acc.kind, acc.container, acc.backup_dir, backup.file,
            tools_image, *(tar_mounts(acc) if acc.kind == "volume" else [])]
    return change(["sh", "-c", RESTORE_SCRIPT, "dockyard-restore", *args],
                  f"restore {acc.name} from {backup.id}: {how}")


def download(acc: Accessory, backup: Backup) -> Command:
    return query(["sh", "-c", DOWNLOAD_SCRIPT, "dockyard-download", acc.backup_dir, backup.file],
                 f"copy {backup.file} to this machine")


def upload(acc: Accessory, local: Path, file: str) -> Command:
    return change(["sh", "-c", UPLOAD_SCRIPT, "dockyard-upload", acc.backup_dir, file],
                  f"upload {local.name} to {acc.backup_dir}/{file} and record its SHA-256",
                  stdin_path=str(local), stdin_label=f"<{local.name}>")


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
