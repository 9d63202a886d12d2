#!/bin/sh
# notify.sh APP EVENT MESSAGE: POST the notification of an event that happened on the server
# (a scheduled job or backup failed) to the app's [notify] webhook, whose address the last
# deploy wrote to the app's notify.url (mode 0600). No webhook: nothing. It never fails its
# caller: at most 10 s, errors to stderr. MESSAGE is plain text (quotes and backslashes are
# replaced: the body is built here, by printf).
app=$1; event=$2; message=$3
dir=/var/lib/dockyard/apps/$app
[ -s "$dir/notify.url" ] || exit 0
url=$(cat "$dir/notify.url")
clean() { printf '%s' "$1" | tr '"\\\n\r\t' "'/   " | cut -c1-500; }
body=$(printf '{"event":"%s","app":"%s","host":"%s","message":"%s","time":"%s","source":"server"}' \
  "$(clean "$event")" "$(clean "$app")" "$(clean "$(hostname)")" "$(clean "$message")" \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)")
wget -q -T 10 -O /dev/null --header 'Content-Type: application/json' \
  --post-data "$body" -- "$url" || echo "notify.sh: the webhook did not take $event" >&2
exit 0
