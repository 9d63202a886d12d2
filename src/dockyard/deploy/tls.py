"""HTTPS for an app's domains: the certificate container, and a deploy's wait for a new
name's first certificate (at most ``[proxy] cert_wait``; the app keeps serving HTTP, and the
container keeps retrying, when it takes longer)."""

from __future__ import annotations

from dockyard.certs import acme
from dockyard.certs.ensure import ensure_certs
from dockyard.deploy.progress import Progress
from dockyard.host.command import Command, change
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import container as router

from .target import Target


def cert_path(domain: str) -> str:
    """The certificate's file name as the router knows it."""
    return f"{rc.CERTS_DIR}/{domain}.pem"


def installed(runner: Runner, domain: str) -> dict[str, str]:
    """What the router serves for ``domain`` (empty: no certificate yet)."""
    return api.parse_ssl_cert(runner.api(api.show_ssl_cert(cert_path(domain)),
                                         socket=router.API_SOCKET, check=False))


def obtain(runner: Runner, progress: Progress, domains: list[str], wait: float) -> list[str]:
    """Ask for the first certificate of each name that has none; returns the names still
    without one (served over HTTP meanwhile, with a warning)."""
    missing = [d for d in domains if not installed(runner, d)]
    if runner.dry_run:
        for d in missing:
            runner.change(acme.issue(d, wait=wait))
        return []
    left = []
    for domain in missing:
        with progress.step(f"obtain a certificate for {domain} (ACME, HTTP-01)", "certs"):
            result = runner.change(acme.issue(domain, wait=wait), check=False, timeout=wait)
        if result is not None and result.ok and installed(runner, domain):
            continue
        left.append(domain)
        why = (result.err or result.out).strip().splitlines()[-1:] if result else []
        progress.warn(f"no certificate for {domain} yet ({why[0] if why else 'no answer'}); "
                      f"it is served over HTTP, and the server keeps trying (see: dockyard "
                      "status)")
    return left


def secure(t: Target, *, force: bool = False) -> list[str]:
    """The app's names get certificates: the certificate container runs, and a name without
    one waits (at most cert_wait) for its first; HTTP keeps working either way. Returns the
    names still without a certificate."""
    assert t.route is not None
    names = acme.tls_domains(t.route.domains, t.route.tls)
    if not names:
        return []
    if not t.settings.acme_email:
        t.progress.warn(f"{', '.join(names)}: served over HTTP only: HTTPS needs an ACME "
                        "account address; set [proxy] acme_email = \"you@example.com\" and "
                        "run: dockyard router apply (or [web] tls = false to silence this)")
        return names
    ensure_certs(t.runner, t.settings, gid=t.who.gid, current=t.snap.certs, force=force)
    t.snap.certs = (acme.config_hash(t.settings, t.who.gid), "running")
    return obtain(t.runner, t.progress, names, t.settings.cert_wait)


def renew(t: Target, names: list[str]) -> list[str]:
    """Order new certificates now (``dockyard certs renew``); returns the names that failed."""
    ensure_certs(t.runner, t.settings, gid=t.who.gid, current=t.snap.certs)
    failed = []
    for domain in names:
        with t.progress.step(f"renew the certificate of {domain}", "certs"):
            result = t.runner.change(acme.issue(domain, wait=t.settings.cert_wait), check=False,
                                     timeout=max(t.settings.cert_wait, 30))
        if result is not None and not result.ok:
            failed.append(domain)
    return failed


def certificate_rows(runner: Runner, domains: list[str], tls_on: bool) -> list[dict[str, str]]:
    """Per domain: how it is served, the certificate's issuer, serial and expiry, and the
    certificate container's last result (for dockyard status)."""
    results = acme.parse_status(runner.query(acme.status_command(), check=False).out)
    rows = []
    for domain in domains:
        if not (tls_on and acme.wants_tls(domain)):
            rows.append({"domain": domain, "https": "no (plain HTTP)", "issuer": "",
                         "expires": "", "serial": "", "last": ""})
            continue
        cert = installed(runner, domain)
        last = results.get(domain)
        rows.append({
            "domain": domain,
            "https": "yes" if cert else "waiting for a certificate",
            "issuer": cert.get("Issuer", ""), "expires": cert.get("notAfter", ""),
            "serial": cert.get("Serial", ""),
            "last": f"{last[1]} at {last[0]}" + (f": {last[2]}" if last[2] else "")
            if last else "",
        })
    return rows


def forget_redirects(names: list[str]) -> Command:
    """Drop names from the on-disk tls.map (the running router was told already)."""
    path = f"{router.ETC_DIR}/tls.map"
    return change(["sh", "-c", 'f=$1; shift; [ -f "$f" ] || exit 0; for n; do '
                   'grep -vxF "$n 1" "$f" > "$f.tmp" || true; mv "$f.tmp" "$f"; done',
                   "dockyard-tls-map", path, *names],
                  f"stop redirecting {', '.join(names)} to HTTPS after a router restart")
