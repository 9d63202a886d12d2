#!/bin/sh
# scheduled.sh NAME ARGS...: one scheduled backup of accessory NAME (backup.sh ARGS), run by
# crond in the cron container; its output goes to NAME.log next to it, and it appends a
# line to the audit log (crontab lines cannot hold the % a date format needs); a failure is
# notified (notify.sh).
name=$1; shift
here=$(dirname "$0")
start=$(date +%s)
echo "--- $(date -u +%Y-%m-%dT%H:%M:%SZ) scheduled backup of $name" >> "$here/$name.log"
sh "$here/backup.sh" "$@" >> "$here/$name.log" 2>&1
rc=$?
end=$(date +%s)
printf '{"time":"%s","user":"cron","invocation":"cron","subcommand":"backup","app":"%s",%s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" \
  "$(printf '"command":"scheduled backup of %s","exit":%d,"duration_ms":%d}' \
    "$name" "$rc" "$(( (end - start) * 1000 ))")" >> /var/lib/dockyard/audit.log
if [ "$rc" -ne 0 ]; then
  sh "$here/notify.sh" "$1" backup.failed "scheduled backup of $name failed (exit $rc)"
fi
exit $rc
