#!/bin/sh
# certs.sh loop | issue NAME | renew NAME | sync | forget NAME...: certificates over ACME, in the
# dockyard-certs container (the ACME image: lego, sh, nc), which shares the router's network
# namespace: lego answers HTTP-01 challenges on the router's loopback, and certificates go
# into the running router through its Runtime API on 127.0.0.1 (no reload, ever).
#
# This container is the only writer of the router's certificate files (certs/NAME.pem,
# certs/crt-list, tls.map): a restarted router loads exactly what it installed.
#
#   loop      every CHECK_INTERVAL seconds: sync, then order the certificates apps want and
#             lack (apps/*/tls-domains), renew those with a third of their lifetime left
#             (backoff after failures: 30 s doubling to 1 h);
#   issue N   a certificate for N now (a deploy waits for it): the one kept from an earlier
#             order when it is not due, a new order otherwise;
#   renew N   a new order for N now (dockyard certs renew);
#   forget N… names no app wants lose their certificates: out of the running router and
#             off the disk (dockyard remove --certificates); a wanted name is kept;
#   sync      names no app wants any more (TLS turned off, app removed, name removed) leave
#             tls.map (no more redirect to HTTPS) and crt-list (HTTPS answers with the
#             default certificate); wanted names that have a certificate are redirected.
#             Their files stay, so turning TLS on again needs no new order.
#
# Settings (environment): ACME_CA, ACME_EMAIL, ROUTER_GID, API (host:port of the Runtime
# API), ACME_LISTEN (where lego answers challenges), CONF (the router's config directory as
# it sees it), CHECK_INTERVAL.
set -u
D=/var/lib/dockyard/certs
ETC=/var/lib/dockyard/router/etc
CONF=${CONF:-/usr/local/etc/haproxy}
RCERTS=$CONF/certs
API=${API:-127.0.0.1:9999}
LEGO=$(command -v lego || echo /lego)
mkdir -p "$D/status" "$D/lego"

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }
api() { printf '%s\n' "$1" | nc "${API%:*}" "${API#*:}"; }
to_epoch() { date -u -D '%b %d %H:%M:%S %Y' -d "$(echo "${1% GMT}" | tr -s ' ')" +%s 2>/dev/null; }
note() { # NAME STATE MESSAGE: the name's last result, for dockyard status
  mkdir -p "$D/status/$1"
  printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" "$3" > "$D/status/$1/result.tmp"
  mv "$D/status/$1/result.tmp" "$D/status/$1/result"
}
lock() {
  while ! mkdir "$D/.lock" 2> /dev/null; do
    pid=$(cat "$D/.lock/pid" 2> /dev/null || true)
    if [ -n "$pid" ] && ! kill -0 "$pid" 2> /dev/null; then
      rm -rf "$D/.lock"
      continue
    fi
    sleep 1
  done
  echo $$ > "$D/.lock/pid"
}
unlock() { rm -rf "$D/.lock"; }

installed() { api "show ssl cert $RCERTS/$1.pem" | grep -q '^Filename:'; }
listed() { api "show ssl crt-list $RCERTS/crt-list" | grep -q "^$RCERTS/$1.pem"; }

# seconds until NAME is due for renewal (a third of its lifetime left); 0 when due or missing
due_in() {
  info=$(api "show ssl cert $RCERTS/$1.pem")
  nb=$(to_epoch "$(echo "$info" | sed -n 's/^notBefore: //p')")
  na=$(to_epoch "$(echo "$info" | sed -n 's/^notAfter: //p')")
  if [ -z "$nb" ] || [ -z "$na" ]; then
    echo 0
    return
  fi
  left=$((na - (na - nb) / 3 - $(date +%s)))
  if [ "$left" -gt 0 ]; then echo "$left"; else echo 0; fi
}

without() { # FILE LINE: FILE without that exact line (replaced by a rename)
  if [ -f "$1" ]; then
    grep -vxF "$2" "$1" > "$1.tmp" || true
    mv "$1.tmp" "$1"
  fi
}

redirect() { # NAME: plain HTTP to NAME goes to HTTPS (running router and tls.map)
  if ! api "show map $CONF/tls.map" | grep -q " $1 1\$"; then
    api "add map $CONF/tls.map $1 1" > /dev/null
  fi
  grep -qxF "$1 1" "$ETC/tls.map" 2> /dev/null || echo "$1 1" >> "$ETC/tls.map"
}

install() { # NAME: put lego's certificate into the running router and on disk
  name=$1
  pem="$D/lego/certificates/$name.pem"
  if [ ! -s "$pem" ]; then
    log "$name: lego wrote no $pem"
    return 1
  fi
  cp "$pem" "$ETC/certs/.$name.pem.tmp"
  chgrp "${ROUTER_GID:-0}" "$ETC/certs/.$name.pem.tmp"
  chmod 0640 "$ETC/certs/.$name.pem.tmp"
  mv "$ETC/certs/.$name.pem.tmp" "$ETC/certs/$name.pem"
  new=0
  if ! installed "$name"; then
    if ! api "new ssl cert $RCERTS/$name.pem" | grep -q 'New empty'; then
      log "$name: new ssl cert failed"
      return 1
    fi
    new=1
  fi
  if ! { printf 'set ssl cert %s <<\n' "$RCERTS/$name.pem"; cat "$pem"; printf '\n'; } \
      | nc "${API%:*}" "${API#*:}" | grep -q 'Transaction'; then
    log "$name: set ssl cert failed"
    return 1
  fi
  if ! api "commit ssl cert $RCERTS/$name.pem" | grep -q 'Success'; then
    log "$name: commit failed"
    return 1
  fi
  if ! listed "$name"; then
    if ! api "add ssl crt-list $RCERTS/crt-list $RCERTS/$name.pem" | grep -q 'Success'; then
      log "$name: add ssl crt-list failed"
      return 1
    fi
  fi
  grep -qxF "$RCERTS/$name.pem" "$ETC/certs/crt-list" 2> /dev/null \
    || echo "$RCERTS/$name.pem" >> "$ETC/certs/crt-list"
  redirect "$name"
  if [ "$new" = 1 ]; then log "$name: certificate installed"; else log "$name: certificate replaced"; fi
}

order() { # NAME: a new certificate from the ACME CA, installed
  name=$1
  S="$D/status/$name"
  mkdir -p "$S"
  set -- --accept-tos --server "$ACME_CA" --path "$D/lego" --http --http.port "$ACME_LISTEN" \
    --key-type ec256 --pem --domains "$name"
  if [ -n "${ACME_EMAIL:-}" ]; then set -- --email "$ACME_EMAIL" "$@"; fi
  if "$LEGO" "$@" run > "$S/log" 2>&1 && install "$name" >> "$S/log" 2>&1; then
    note "$name" ok "issued"
    rm -f "$S/fails" "$S/retry"
    log "$name: certificate issued and installed"
    return 0
  fi
  fails=$(($(cat "$S/fails" 2> /dev/null || echo 0) + 1))
  echo "$fails" > "$S/fails"
  wait=30
  i=1
  while [ "$i" -lt "$fails" ] && [ "$wait" -lt 3600 ]; do
    wait=$((wait * 2))
    i=$((i + 1))
  done
  [ "$wait" -gt 3600 ] && wait=3600
  echo $(($(date +%s) + wait)) > "$S/retry"
  why=$(grep -v '^[[:space:]]*$' "$S/log" | tail -1 | cut -c1-300)
  note "$name" failed "attempt $fails, next try in ${wait}s: $why"
  log "$name: failed (attempt $fails, next try in ${wait}s): $why"
  return 1
}

issue() { # NAME: the kept certificate when it is not due, a new order otherwise
  name=$1
  lock
  rc=0
  if ! installed "$name" && [ -s "$D/lego/certificates/$name.pem" ]; then
    install "$name" > /dev/null 2>&1 || true
  fi
  if ! installed "$name" || [ "$(due_in "$name")" = 0 ]; then
    order "$name" || rc=1
  else
    listed "$name" || install "$name" > /dev/null
    redirect "$name"
    log "$name: the certificate kept from an earlier order is installed (no new order)"
  fi
  unlock
  return "$rc"
}

renew() { # NAME: a new order now
  lock
  rc=0
  order "$1" || rc=1
  unlock
  return "$rc"
}

wanted() { cat /var/lib/dockyard/apps/*/tls-domains 2> /dev/null | sort -u; }

sync() {
  want=" $(wanted | tr '\n' ' ') "
  # names redirected (tls.map) or served with their certificate (crt-list) that no app wants
  for name in $(api "show map $CONF/tls.map" | awk '{print $2}') \
      $(sed -n 's/ 1$//p' "$ETC/tls.map" 2> /dev/null); do
    case $want in *" $name "*) continue ;; esac
    api "del map $CONF/tls.map $name" > /dev/null
    without "$ETC/tls.map" "$name 1"
    log "$name: no app wants HTTPS for it: no more redirect"
  done
  for pem in $(api "show ssl crt-list $RCERTS/crt-list" | awk '/^\// {print $1}') \
      $(cat "$ETC/certs/crt-list" 2> /dev/null); do
    name=${pem##*/}
    name=${name%.pem}
    case $want in *" $name "*) continue ;; esac
    api "del ssl crt-list $RCERTS/crt-list $pem" > /dev/null
    without "$ETC/certs/crt-list" "$pem"
    log "$name: no app wants HTTPS for it: served with the default certificate"
  done
  # wanted names with a certificate loaded are redirected (TLS turned on again)
  for name in $(wanted); do
    if installed "$name"; then
      listed "$name" || api "add ssl crt-list $RCERTS/crt-list $RCERTS/$name.pem" > /dev/null
      grep -qxF "$RCERTS/$name.pem" "$ETC/certs/crt-list" 2> /dev/null \
        || echo "$RCERTS/$name.pem" >> "$ETC/certs/crt-list"
      redirect "$name"
    fi
  done
}

forget() { # NAME...: (lock held, after sync) certificates of names no app wants, deleted
  want=" $(wanted | tr '\n' ' ') "
  for name in "$@"; do
    case $want in *" $name "*)
      log "$name: an app wants HTTPS for it: its certificate is kept"
      continue ;;
    esac
    api "del ssl cert $RCERTS/$name.pem" > /dev/null
    for ext in pem crt key issuer.crt json; do
      rm -f "$D/lego/certificates/$name.$ext"
    done
    rm -f "$ETC/certs/$name.pem"
    rm -rf "$D/status/$name"
    log "$name: certificate deleted"
  done
}

renewal_failed() { # NAME: every app serving NAME is notified (its [notify] webhook), on the
  # first failed attempt and every eighth after (the retries back off to an hour)
  fails=$(cat "$D/status/$1/fails" 2> /dev/null || echo 1)
  [ "$fails" -eq 1 ] || [ $((fails % 8)) -eq 0 ] || return 0
  for f in /var/lib/dockyard/apps/*/tls-domains; do
    grep -qx "$1" "$f" 2> /dev/null || continue
    app=$(basename "$(dirname "$f")")
    sh "$D/bin/notify.sh" "$app" certificate.renewal_failed \
      "the renewal of the certificate of $1 failed (attempt $fails); the current one is served until it expires" || true
  done
}

check_all() {
  for name in $(wanted); do
    retry=$(cat "$D/status/$name/retry" 2> /dev/null || echo 0)
    [ "$(date +%s)" -lt "$retry" ] && continue
    if ! installed "$name"; then
      if [ -s "$D/lego/certificates/$name.pem" ] && install "$name"; then
        continue # obtained before, not in this router yet: no new order
      fi
      log "$name: no certificate yet, ordering"
      issue "$name" || true
    elif [ "$(due_in "$name")" = 0 ]; then
      log "$name: a third of its lifetime left, renewing"
      renew "$name" || renewal_failed "$name"
    fi
  done
}

case ${1:-loop} in
  loop)
    log "dockyard-certs: checking every ${CHECK_INTERVAL:-10}s"
    lost=0
    while :; do
      # a restarted router has a new network namespace: exit, and Docker's restart policy
      # starts this container again inside the new one
      if api "show info" | grep -q '^Name:'; then lost=0; else lost=$((lost + 1)); fi
      if [ "$lost" -ge 3 ]; then
        log "the router's API is gone; restarting to rejoin it"
        exit 1
      fi
      if [ "$lost" = 0 ]; then
        lock
        sync
        unlock
        check_all
      fi
      sleep "${CHECK_INTERVAL:-10}"
    done
    ;;
  issue) issue "$2" ;;
  renew) renew "$2" ;;
  sync)
    lock
    sync
    unlock
    ;;
  forget)
    shift
    lock
    sync
    forget "$@"
    unlock
    ;;
  installed) installed "$2" ;;
  *)
    echo "usage: certs.sh loop | issue NAME | renew NAME | sync | forget NAME..." >&2
    exit 2
    ;;
esac
