#!/bin/sh
# read-routes.sh: every app's route.json, in name order, exactly as write-files.sh hashes
# them to tell whether the routes changed. Sent inline; read-only.
export LC_ALL=C
set -- /var/lib/dockyard/apps/*/route.json
if [ -f "$1" ]; then cat "$@"; fi
exit 0
