#!/bin/sh
# lock.sh PATH INFO [BATCH_SOURCE BATCH_ARGS...]: hold a lock while Dockyard runs.
#
# Takes an flock on PATH and keeps it while this script's stdin (the SSH channel) stays
# open: when Dockyard exits, is killed or loses the connection, the channel closes, cat sees
# end-of-file and the lock is gone (lines Dockyard sent before closing are appended to the
# audit log first). No stale lock files, no timeouts to tune.
# Prints "locked" once held (exits 75 when another process holds it, after printing the
# holder's line), then, when given a
# batch, runs it (the facts read under the lock: one round trip for both) and prints a
# "\036end" line. Sent inline; POSIX sh.
set -u
path=$1
info=$2
shift 2
[ -d "${path%/*}" ] || mkdir -p "${path%/*}" || exit 1
exec 9>> "$path" || exit 1
if ! flock -n 9; then
  cat "$path.info" 2> /dev/null # who holds it, read now: it may be gone by a later read
  exit 75
fi
printf '%s %s\n' "$$" "$info" > "$path.info"
echo locked
if [ $# -gt 0 ]; then
  batch=$1
  shift
  sh -c "$batch" dockyard-batch "$@" < /dev/null
fi
printf '\036end\n'
# held until stdin closes; what Dockyard sends first (the command's closing audit line, with
# its duration) goes to the audit log, still under the lock
rest=$(cat)
if [ -n "$rest" ] && [ -d /var/lib/dockyard ]; then
  (umask 077 && printf '%s\n' "$rest" >> /var/lib/dockyard/audit.log) 2> /dev/null
fi
exit 0
