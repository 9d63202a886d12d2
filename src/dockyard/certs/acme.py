"""Certificates over ACME (HTTP-01) with lego, obtained and renewed on the server.

One small long-lived container, ``dockyard-certs``, runs the ACME image (lego) with a shell
script. It shares the router's network namespace (``--network container:dockyard-router``),
so with nothing published:

- lego answers HTTP-01 challenges on the router's loopback (``ACME_LOOPBACK``); the router
  sends ``/.well-known/acme-challenge/`` of the names it routes there;
- the script installs each certificate through the router's Runtime API on its loopback
  (``new/set/commit ssl cert``, ``add ssl crt-list``) and marks the name in ``tls.map``
  (HTTP then redirects to HTTPS): no reload, no restart, no connection closed;
- the PEM files and the crt-list are written under the router's directory too, so a
  restarted router loads the same certificates (no new ACME order).

Every ``CHECK_INTERVAL`` it reads the names apps want (``apps/*/tls-domains``), issues the
missing ones and renews those with a third of their lifetime left, with a backoff after
failures. Each name's last result is in ``certs/status/<name>`` (``dockyard status``). A
deploy asks for a new name's first certificate with ``certs.sh issue NAME``.
"""

from __future__ import annotations

import hashlib
import ipaddress

from dockyard.config.model import ProxyConfig
from dockyard.host.command import Command, change, query
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.state import paths

NAME = "dockyard-certs"
CERTS_DIR = f"{paths.ROOT}/certs"
SCRIPT = f"{CERTS_DIR}/bin/certs.sh"
CA_ROOT = f"{CERTS_DIR}/acme-ca-root.pem"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
CHECK_INTERVAL = 10

CERTS_SCRIPT = r"""#!/bin/sh
# certs.sh loop | issue NAME | renew NAME | status
# Written by Dockyard; runs in the dockyard-certs container (lego, sh, nc).
set -u
D=/var/lib/dockyard/certs
ETC=/var/lib/dockyard/router/etc
RCERTS=__RCERTS__
RCONF=__RCONF__
API_HOST=__API_HOST__
API_PORT=__API_PORT__
LEGO=$(command -v lego || echo /lego)
mkdir -p "$D/status" "$D/lego"

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) $*"; }
api() { printf '%s\n' "$1" | nc "$API_HOST" "$API_PORT"; }
to_epoch() { date -u -D '%b %d %H:%M:%S %Y' -d "$(echo "${1% GMT}" | tr -s ' ')" +%s 2>/dev/null; }
note() { # NAME STATE MESSAGE: the name's last result, for dockyard status
  mkdir -p "$D/status/$1"
  printf '%s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$2" "$3" > "$D/status/$1/result.tmp"
  mv "$D/status/$1/result.tmp" "$D/status/$1/result"
}
lock() {
  while ! mkdir "$D/.lock" 2>/dev/null; do
    pid=$(cat "$D/.lock/pid" 2>/dev/null || true)
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then rm -rf "$D/.lock"; continue; fi
    sleep 1
  done
  echo $$ > "$D/.lock/pid"
}
unlock() { rm -rf "$D/.lock"; }

installed() { api "show ssl cert $RCERTS/$1.pem" | grep -q '^Filename:'; }

# seconds until NAME is due for renewal (a third of its lifetime left); 0 when due or missing
due_in() {
  info=$(api "show ssl cert $RCERTS/$1.pem")
  nb=$(to_epoch "$(echo "$info" | sed -n 's/^notBefore: //p')")
  na=$(to_epoch "$(echo "$info" | sed -n 's/^notAfter: //p')")
  if [ -z "$nb" ] || [ -z "$na" ]; then echo 0; return; fi
  left=$(( na - (na - nb) / 3 - $(date +%s) ))
  [ "$left" -gt 0 ] && echo "$left" || echo 0
}

install() { # NAME: put lego's certificate into the running router and on disk
  name=$1
  pem="$D/lego/certificates/$name.pem"
  [ -s "$pem" ] || { log "$name: lego wrote no $pem"; return 1; }
  cp "$pem" "$ETC/certs/.$name.pem.tmp"
  chgrp "${ROUTER_GID:-0}" "$ETC/certs/.$name.pem.tmp"; chmod 0640 "$ETC/certs/.$name.pem.tmp"
  mv "$ETC/certs/.$name.pem.tmp" "$ETC/certs/$name.pem"
  new=0
  if ! installed "$name"; then
    api "new ssl cert $RCERTS/$name.pem" | grep -q 'New empty' \
      || { log "$name: new ssl cert failed"; return 1; }
    new=1
  fi
  { printf 'set ssl cert %s <<\n' "$RCERTS/$name.pem"; cat "$pem"; printf '\n'; } \
    | nc "$API_HOST" "$API_PORT" | grep -q 'Transaction' || { log "$name: set ssl cert failed"; return 1; }
  api "commit ssl cert $RCERTS/$name.pem" | grep -q 'Success' || { log "$name: commit failed"; return 1; }
  if ! api "show ssl crt-list $RCERTS/crt-list" | grep -q "$RCERTS/$name.pem"; then
    api "add ssl crt-list $RCERTS/crt-list $RCERTS/$name.pem" | grep -q 'Success' \
      || { log "$name: add ssl crt-list failed"; return 1; }
  fi
  grep -qxF "$RCERTS/$name.pem" "$ETC/certs/crt-list" 2>/dev/null \
    || echo "$RCERTS/$name.pem" >> "$ETC/certs/crt-list"
  if ! api "show map $RCONF/tls.map" | grep -q " $name 1\$"; then
    api "add map $RCONF/tls.map $name 1" >/dev/null
  fi
  grep -qx "$name 1" "$ETC/tls.map" 2>/dev/null || echo "$name 1" >> "$ETC/tls.map"
  [ "$new" = 1 ] && log "$name: certificate installed" || log "$name: certificate replaced"
}

issue() { # NAME: order a certificate now (new name, renewal, or forced)
  name=$1
  S="$D/status/$name"
  mkdir -p "$S"
  lock
  set -- --accept-tos --server "$ACME_CA" --path "$D/lego" --http --http.port __ACME_LISTEN__ \
    --key-type ec256 --pem --domains "$name"
  [ -n "${ACME_EMAIL:-}" ] && set -- --email "$ACME_EMAIL" "$@"
  if "$LEGO" "$@" run > "$S/log" 2>&1 && install "$name" >> "$S/log" 2>&1; then
    note "$name" ok "issued"
    rm -f "$S/fails" "$S/retry"
    unlock
    log "$name: certificate issued and installed"
    return 0
  fi
  fails=$(( $(cat "$S/fails" 2>/dev/null || echo 0) + 1 ))
  echo "$fails" > "$S/fails"
  wait=30; i=1
  while [ "$i" -lt "$fails" ] && [ "$wait" -lt 3600 ]; do wait=$((wait * 2)); i=$((i + 1)); done
  [ "$wait" -gt 3600 ] && wait=3600
  echo $(( $(date +%s) + wait )) > "$S/retry"
  why=$(grep -v '^[[:space:]]*$' "$S/log" | tail -1 | cut -c1-300)
  note "$name" failed "attempt $fails, next try in ${wait}s: $why"
  log "$name: failed (attempt $fails, next try in ${wait}s): $why"
  unlock
  return 1
}

wanted() { cat /var/lib/dockyard/apps/*/tls-domains 2>/dev/null | sort -u; }

check_all() {
  for name in $(wanted); do
    retry=$(cat "$D/status/$name/retry" 2>/dev/null || echo 0)
    [ "$(date +%s)" -lt "$retry" ] && continue
    if ! installed "$name"; then
      if [ -s "$D/lego/certificates/$name.pem" ] && install "$name"; then
        continue  # obtained before, not in this router yet: no new order
      fi
      log "$name: no certificate yet, ordering"; issue "$name" || true
    elif [ "$(due_in "$name")" = 0 ]; then
      log "$name: a third of its lifetime left, renewing"; issue "$name" || true
    fi
  done
}

case ${1:-loop} in
  loop)
    log "dockyard-certs: checking every __INTERVAL__s"
    lost=0
    while :; do
      # a restarted router has a new network namespace: exit, and Docker's restart policy
      # starts this container again inside the new one
      if api "show info" | grep -q '^Name:'; then lost=0; else lost=$((lost + 1)); fi
      if [ "$lost" -ge 3 ]; then log "the router's API is gone; restarting to rejoin it"; exit 1; fi
      [ "$lost" = 0 ] && check_all
      sleep __INTERVAL__
    done ;;
  issue) issue "$2" ;;
  renew) issue "$2" ;;
  installed) installed "$2" ;;
  *) echo "usage: certs.sh loop | issue NAME | renew NAME" >&2; exit 2 ;;
esac
"""


def script(interval: int = CHECK_INTERVAL) -> str:
    host, port = rc.API_LOOPBACK.split(":")
    return (CERTS_SCRIPT.replace("__RCERTS__", rc.CERTS_DIR).replace("__RCONF__", rc.CONFIG_DIR)
            .replace("__API_HOST__", host).replace("__API_PORT__", port)
            .replace("__ACME_LISTEN__", rc.ACME_LOOPBACK)
            .replace("__INTERVAL__", str(interval)))


def wants_tls(domain: str) -> bool:
    """Names under .localhost and IP addresses are served over plain HTTP only."""
    if domain == "localhost" or domain.endswith(".localhost"):
        return False
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return True
    return False


def tls_domains(domains: list[str], tls: bool) -> list[str]:
    return [d for d in domains if tls and wants_tls(d) and not d.startswith("*.")]


def ca_url(settings: ProxyConfig) -> str:
    return STAGING if settings.acme_staging else settings.acme_ca


def config_hash(settings: ProxyConfig, gid: int) -> str:
    data = "\n".join([settings.acme_image, ca_url(settings), settings.acme_email or "",
                      settings.acme_ca_root or "", str(gid), script()])
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def run(settings: ProxyConfig, *, gid: int) -> Command:
    argv = ["docker", "run", "-d", f"--name={NAME}", "--label=dockyard.role=certs",
            f"--label=dockyard.config={config_hash(settings, gid)}",
            f"--network=container:{router.NAME}", "--restart=unless-stopped", "--init",
            *router.LOG_OPTS, f"--volume={paths.ROOT}:{paths.ROOT}",
            f"--env=ACME_CA={ca_url(settings)}", f"--env=ROUTER_GID={gid}"]
    if settings.acme_email:
        argv.append(f"--env=ACME_EMAIL={settings.acme_email}")
    if settings.acme_ca_root:
        argv.append(f"--env=LEGO_CA_CERTIFICATES={CA_ROOT}")
    argv += ["--entrypoint=sh", "--", settings.acme_image, SCRIPT, "loop"]
    return change(argv, "start dockyard-certs: lego in the router's network namespace obtains "
                  "and renews certificates and installs them through the Runtime API")


def remove() -> Command:
    return change(["docker", "rm", "-f", "--", NAME], "remove the certificate container (its "
                  "certificates and ACME account stay under /var/lib/dockyard/certs)")


def inspect() -> Command:
    return query(["docker", "inspect",
                  '--format={{index .Config.Labels "dockyard.config"}} {{.State.Status}}',
                  "--", NAME],
                 "is the certificate container running, with these settings?")


def issue(domain: str, *, wait: float) -> Command:
    return change(["docker", "exec", "--", NAME, "sh", SCRIPT, "issue", domain],
                  f"order a certificate for {domain} over ACME (HTTP-01) and install it "
                  f"without a reload; a deploy waits at most {wait:g}s, then serves HTTP")


def status_command() -> Command:
    return query(["sh", "-c", f'cd {CERTS_DIR}/status 2>/dev/null || exit 0; for d in *; do '
                  '[ -f "$d/result" ] && echo "$d $(cat "$d/result")"; done; true'],
                 "the certificate container's last result per name")


def parse_status(text: str) -> dict[str, tuple[str, str, str]]:
    """name -> (time, ok|failed, message)."""
    out = {}
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 3:
            out[parts[0]] = (parts[1], parts[2], parts[3] if len(parts) > 3 else "")
    return out
