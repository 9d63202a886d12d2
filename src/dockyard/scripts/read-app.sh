#!/bin/sh
# read-app.sh DIR: an app's state, read-only: each release record (one JSON line each), then
# "--current" and the live release's number, then "--route" and route.json. Sent inline.
dir=$1
for f in "$dir"/releases/*.json; do
  if [ -f "$f" ]; then cat "$f"; fi
done
echo "--current"
cat "$dir/current" 2> /dev/null
echo
echo "--route"
cat "$dir/route.json" 2> /dev/null
exit 0
