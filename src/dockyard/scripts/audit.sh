#!/bin/sh
# audit.sh PREFIX PENDING COMMAND...: run one command, then append one JSON line to the
# server's audit log (time, who, which dockyard command, the command line with secrets
# redacted: the PREFIX fields Dockyard built; exit code and duration measured here).
# PENDING: complete lines not written yet (Runtime API changes), written first. Used for the
# commands that stream (builds, run, exec); batches audit their commands themselves.
# Sent inline; POSIX sh.
p=$1
pend=$2
shift 2
ts=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t0=$(date +%s%N 2>/dev/null)
"$@"
rc=$?
t1=$(date +%s%N 2>/dev/null)
case "$t0$t1" in
  *[!0-9]* | "") ms=null ;;
  *) ms=$(((t1 - t0) / 1000000)) ;;
esac
if [ -d /var/lib/dockyard ]; then
  (
    umask 077
    printf '%s' "$pend"
    printf '{"time":"%s",%s,"exit":%d,"duration_ms":%s}\n' "$ts" "$p" "$rc" "$ms"
  ) >> /var/lib/dockyard/audit.log
fi
exit "$rc"
