#!/bin/sh
# read-app.sh DIR: an app's state, read-only: each release record (one JSON line each), then
# "--current" and the live release's number, then "--route" and route.json. Sent inline.
dir=$1
# few processes: one cat for every release record, the live number read by the shell
set -- "$dir"/releases/*.json
if [ -f "$1" ]; then cat "$@"; fi
echo "--current"
current=""
if [ -f "$dir/current" ]; then read -r current < "$dir/current"; fi
echo "$current"
echo "--route"
cat "$dir/route.json" 2> /dev/null
exit 0
