#!/bin/sh
# retire.sh PREFIX DRAIN STOP BACKEND SERVER... -- CONTAINER...: retire an old release.
#
# Runs on the server after a deploy switched traffic, so the deploy command returns at once:
# in a small container (the tools image) that shares the router's network namespace (the
# Runtime API on 127.0.0.1:9999) and has the Docker socket and /var/lib/dockyard. The deploy
# has already set SERVER... to drain (no new requests). This waits until they have no
# request in flight (at most DRAIN seconds), parks them (out of rotation, pointed at a closed
# port; "name=named" ones are also renamed so the router stops resolving a name that is
# gone), stops the CONTAINERs (SIGTERM, SIGKILL after STOP seconds) and removes them.
# Each step is one line in the audit log, with PREFIX's fields (who, which deploy).
# While it runs, `dockyard status` shows the old release as draining.
set -u
prefix=$1
drain=$2
stop=$3
backend=$4
shift 4
servers=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  servers="$servers $1"
  shift
done
[ $# -gt 0 ] && shift
log=/var/lib/dockyard/audit.log

api() { printf '%s\n' "$1" | nc 127.0.0.1 9999; }
now() { date +%s; }
audit() { # COMMAND EXIT SECONDS
  [ -d /var/lib/dockyard ] || return 0
  printf '{"time":"%s",%s,"command":"%s","exit":%d,"duration_ms":%d}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$prefix" "$1" "$2" "$(($3 * 1000))" >> "$log"
}

# in-flight requests (current sessions + queued) of our servers, from "show stat"
busy() {
  api "show stat -1 4 -1" | awk -F, -v b="$backend" -v list="$servers" '
    BEGIN { n = split(list, s, " "); for (i = 1; i <= n; i++) { split(s[i], p, "="); want[p[1]] = 1 } }
    $1 == b && ($2 in want) { total += $3 + $5 }
    END { print total + 0 }'
}

start=$(now)
names=""
for entry in $servers; do names="$names ${entry%%=*}"; done
if [ -n "$servers" ]; then
  while [ "$(busy)" != 0 ] && [ $(($(now) - start)) -lt "$drain" ]; do sleep 0.2; done
  left=$(busy)
  audit "drain$names (in flight at the end: $left)" 0 $(($(now) - start))
  for entry in $servers; do
    server=${entry%%=*}
    api "set server $backend/$server state maint" > /dev/null
    api "set server $backend/$server addr 127.0.0.1 port 1" > /dev/null
    case $entry in *=named) api "set server $backend/$server fqdn dockyard-router" > /dev/null ;; esac
  done
  audit "park$names" 0 0
fi
if [ $# -gt 0 ]; then
  t=$(now)
  docker stop -t "$stop" -- "$@" > /dev/null 2>&1
  docker rm -f -- "$@" > /dev/null 2>&1
  rc=$?
  audit "docker stop -t $stop -- $* && docker rm -f -- $*" "$rc" $(($(now) - t))
fi
