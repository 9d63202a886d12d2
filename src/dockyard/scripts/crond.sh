#!/bin/sh
# crond.sh DIR: the cron container's command. One busybox crond per directory under
# DIR/tabs (each a crontab named root, and a TZ file naming the time zone it is read in:
# "UTC" for scheduled backups, a job's timezone, or none for the server's own, which
# /etc/localtime mounted from the server gives). It waits for them all.
dir=$1
started=0
while read -r key; do
  tab=$dir/tabs/$key
  [ -f "$tab/root" ] || continue
  if [ -f "$tab/TZ" ]; then
    TZ=$(cat "$tab/TZ") crond -f -l 8 -L /dev/stderr -c "$tab" &
  else
    crond -f -l 8 -L /dev/stderr -c "$tab" &
  fi
  started=$((started + 1))
done < "$dir/tabs.list"
[ "$started" -gt 0 ] || { echo "crond.sh: no crontab under $dir/tabs" >&2; exit 1; }
wait
