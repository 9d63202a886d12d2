#!/bin/sh
# restore.sh APP NAME KIND CONTAINER DIR FILE TOOLS [--volume=...]: restore an accessory
# from DIR/FILE (FILE is a backup's file name, never a path: checked here too).
set -eu
app=$1; kind=$3; ctr=$4; dir=$5; file=$6; tools=$7; shift 7
case $file in
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.pgdump|\
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.rdb|\
  [0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-[a-z]*.tar) ;;
  *) echo "not a backup file name: $file" >&2; exit 2 ;;
esac
case $file in */*|*[!a-zA-Z0-9.-]*) echo "not a backup file name: $file" >&2; exit 2 ;; esac
file=$dir/$file
[ -f "$file" ] || { echo "no such backup: $file" >&2; exit 3; }
case $kind in
postgres)
  docker exec -i "$ctr" sh -c 'exec pg_restore --clean --if-exists --single-transaction --no-owner -U "${POSTGRES_USER:-postgres}" -d "${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"' < "$file" ;;
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
