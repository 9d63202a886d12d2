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

from dockyard import scripts
from dockyard.config.model import ProxyConfig
from dockyard.host.command import Command, Fact, change, fact
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.state import paths

NAME = "dockyard-certs"
CERTS_DIR = f"{paths.ROOT}/certs"
SCRIPT = f"{CERTS_DIR}/bin/certs.sh"
CA_ROOT = f"{CERTS_DIR}/acme-ca-root.pem"
STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory"
CHECK_INTERVAL = 10

def script() -> str:
    """certs.sh, as the container runs it (settings come from its environment)."""
    return scripts.source("certs")


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
            f"--env=ACME_CA={ca_url(settings)}", f"--env=ROUTER_GID={gid}",
            f"--env=API={rc.API_LOOPBACK}", f"--env=ACME_LISTEN={rc.ACME_LOOPBACK}",
            f"--env=CONF={rc.CONFIG_DIR}", f"--env=CHECK_INTERVAL={CHECK_INTERVAL}"]
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


def issue(domain: str, *, wait: float) -> Command:
    return change(["docker", "exec", "--", NAME, "sh", SCRIPT, "issue", domain],
                  f"install a certificate for {domain}: the one kept from an earlier order when "
                  f"it is still good, a new order over ACME (HTTP-01) otherwise, without a "
                  f"reload; a deploy waits at most {wait:g}s, then serves HTTP",
                  if_fails="the name is served over plain HTTP meanwhile; the certificate "
                  "container keeps trying (dockyard status shows its last result)")


def renew(domain: str, *, wait: float) -> Command:
    return change(["docker", "exec", "--", NAME, "sh", SCRIPT, "renew", domain],
                  f"order a new certificate for {domain} now and install it without a reload "
                  f"(at most {wait:g}s)",
                  if_fails="the current certificate stays in place")


def sync() -> Command:
    """The certificate container's files follow the names apps want now (TLS turned off or
    on, a name or an app removed): it is the only writer of those files."""
    return change(["docker", "exec", "--", NAME, "sh", SCRIPT, "sync"],
                  "the certificate container drops the names no app wants from its lists "
                  "(no more redirect, the default certificate on HTTPS) and redirects the "
                  "wanted ones that have a certificate",
                  if_fails="its loop does the same within 10 seconds")


def forget(names: list[str]) -> Command:
    """Delete the certificates of names no app wants (``remove --certificates``)."""
    return change(["docker", "exec", "--", NAME, "sh", SCRIPT, "forget", *names],
                  "the certificate container deletes the certificates of these names (no app "
                  "wants them): out of the running router, off the disk",
                  if_fails="the certificates stay on disk, unused; run dockyard remove "
                  "--certificates again")


def status() -> Fact[dict[str, tuple[str, str, str]]]:
    """name -> (time, ok|failed, message): the certificate container's last result."""
    return fact(scripts.inline("cert-status", f"{CERTS_DIR}/status"),
                lambda a: parse_status(a.out),
                "the certificate container's last result per name")


def parse_status(text: str) -> dict[str, tuple[str, str, str]]:
    """name -> (time, ok|failed, message)."""
    out = {}
    for line in text.split("\n"):
        parts = line.split(" ", 3)
        if len(parts) >= 3:
            out[parts[0]] = (parts[1], parts[2], parts[3] if len(parts) > 3 else "")
    return out
