#!/bin/sh
# ready.sh CONTAINER KIND TIMEOUT: wait until an accessory answers (pg_isready, redis-cli
# ping, its HEALTHCHECK, or running when it has none); polling here costs one round trip.
c=$1; kind=$2; timeout=$3
end=$(( $(date +%s) + timeout ))
while :; do
  st=$(docker inspect \
    -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' -- "$c" 2>/dev/null) \
    || { echo "$c does not exist" >&2; exit 3; }
  if [ "${st%%/*}" = running ]; then
    case $kind in
      postgres) docker exec "$c" sh -c \
          'exec pg_isready -q -h 127.0.0.1 -U "${POSTGRES_USER:-postgres}"' >/dev/null 2>&1 \
          && exit 0 ;;
      redis) [ "$(docker exec "$c" redis-cli ping 2>/dev/null)" = PONG ] && exit 0 ;;
      *) case ${st#*/} in healthy|'') exit 0 ;; esac ;;
    esac
  fi
  [ "$(date +%s)" -ge "$end" ] && { echo "$c is $st after ${timeout}s" >&2; exit 1; }
  sleep 0.5
done
