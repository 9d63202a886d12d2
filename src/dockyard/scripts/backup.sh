#!/bin/sh
# backup.sh APP NAME KIND CONTAINER WHY KEEP TOOLS [--volume=...]: one backup of an
# accessory, as a file under /var/lib/dockyard/backups/APP/NAME/ with its SHA-256 next to it.
# The same script takes manual backups (over SSH) and scheduled ones (in the cron
# container): there is one way to take a backup.
#   postgres: pg_dump -Fc inside the container (one consistent snapshot);
#   redis: SAVE (a fresh RDB snapshot), then the RDB file is copied out;
#   volume: the accessory is stopped, its volumes are tarred by a TOOLS container, and it is
#           started again even when the copy fails.
# Prints "FILE BYTES SHA256" last. Scheduled backups beyond KEEP are deleted (the oldest).
set -eu
app=$1; name=$2; kind=$3; ctr=$4; why=$5; keep=$6; tools=$7; shift 7
dir=/var/lib/dockyard/backups/$app/$name
umask 077
mkdir -p "$dir"
stamp() { date -u +%Y%m%dT%H%M%SZ; }
id=$(stamp)-$why
taken() { for f in "$dir/$1".*; do [ -e "$f" ] && return 0; done; return 1; }
while taken "$id"; do sleep 1; id=$(stamp)-$why; done
case $kind in postgres) ext=pgdump ;; redis) ext=rdb ;; *) ext=tar ;; esac
tmp=$dir/.$id.$ext.partial
trap 'rm -f "$tmp"' EXIT
case $kind in
postgres)
  docker exec "$ctr" sh -c 'exec pg_dump -Fc -U "${POSTGRES_USER:-postgres}" "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"' > "$tmp" ;;
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
  for f in "$dir"/[0-9]*T[0-9]*Z-scheduled.*; do
    case $f in *.sha256) ;; *) [ -f "$f" ] && echo "${f##*/}" ;; esac
  done | sort -r | tail -n +$((keep + 1)) |
    while read -r old; do rm -f "$dir/$old" "$dir/$old.sha256"; echo "deleted $old (keep $keep)" >&2; done
fi
echo "$id.$ext $size $sum"
