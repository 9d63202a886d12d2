#!/bin/sh
# chain.sh PORT... -- DOMAIN...: does a request for each DOMAIN to this machine's own PORTs
# (the web server in front: 443 is HTTPS, any other port plain HTTP) reach Dockyard's router?
# Prints "DOMAIN PORT STATUS VIA" per pair (VIA: the response's Via header, which names the
# router when it answered; "-" when none). Read-only; sent inline. Needs curl ("nocurl").
command -v curl > /dev/null 2>&1 || {
  echo nocurl
  exit 0
}
ports=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  ports="$ports $1"
  shift
done
[ $# -gt 0 ] && shift
for d in "$@"; do
  for port in $ports; do
    scheme=http
    [ "$port" = 443 ] && scheme=https
    out=$(curl -sk -o /dev/null -D - --max-time 5 --resolve "$d:$port:127.0.0.1" \
      "$scheme://$d:$port/" 2> /dev/null | tr -d '\r')
    status=$(printf '%s\n' "$out" | awk 'NR == 1 { print $2 }')
    via=$(printf '%s\n' "$out" | awk 'tolower($1) == "via:" { $1 = ""; sub(/^ /, ""); print; exit }')
    echo "$d $port ${status:-none} $(printf '%s' "${via:--}" | tr ' ' '_')"
  done
done
exit 0
