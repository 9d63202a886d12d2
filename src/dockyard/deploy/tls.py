"""HTTPS for an app's domains: the certificate container, and a deploy's wait for a new
name's first certificate (at most ``[proxy] cert_wait``; the app keeps serving HTTP, and the
container keeps retrying, when it takes longer)."""

from __future__ import annotations

from dockyard.certs import acme
from dockyard.certs.ensure import ensure_certs
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc

from .target import Target


def cert_path(domain: str) -> str:
    """The certificate's file as the router knows it."""
    return rc.cert_path(domain)


def installed(runner: Runner, domain: str) -> dict[str, str]:
    """What the router serves for ``domain`` (empty: no certificate yet)."""
    return api.parse_ssl_cert(runner.api(api.show_ssl_cert(cert_path(domain)), check=False))


def obtain(t: Target, domains: list[str], wait: float) -> list[str]:
    """Ask for the first certificate of each name that has none (the one kept from an
    earlier order when it is still good: certs.sh issue); returns the names still without
    one (served over HTTP meanwhile, with a warning)."""
    runner, progress = t.runner, t.progress
    left = []
    for domain in [d for d in domains if not installed(runner, d)]:
        with progress.step(f"obtain a certificate for {domain} (ACME, HTTP-01)", "certs"):
            result = runner.change(acme.issue(domain, wait=wait), check=False, timeout=wait)
        if result.planned or (result.ok and installed(runner, domain)):
            continue
        left.append(domain)
        why = (result.err or result.out).strip().splitlines()[-1:]
        progress.warn(f"no certificate for {domain} yet ({why[0] if why else 'no answer'}); "
                      "it is served over HTTP, and the server keeps trying (see: dockyard "
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
    left: set[str] = set()
    for node in t.everywhere:  # a cluster: every node's certificate container orders its own
        left |= set(_secure_one(node, names, force=force))
    return sorted(left)


def _secure_one(t: Target, names: list[str], *, force: bool) -> list[str]:
    if not t.settings.acme_email:
        t.progress.warn(f"{', '.join(names)}: served over HTTP only: HTTPS needs an ACME "
                        "account address; set [proxy] acme_email = \"you@example.com\" and "
                        "run: dockyard router apply (or [web] tls = false to silence this)")
        return names
    ensure_certs(t.runner, t.settings, gid=t.snap.who.gid, current=t.snap.certs,
                 image_present=t.snap.images.get(t.settings.acme_image, False), force=force)
    t.snap.certs = (acme.config_hash(t.settings, t.snap.who.gid), "running")
    return obtain(t, names, t.settings.cert_wait)


def renew(t: Target, names: list[str]) -> list[str]:
    """Order new certificates now (``dockyard certs renew``); returns the names that failed."""
    ensure_certs(t.runner, t.settings, gid=t.snap.who.gid, current=t.snap.certs,
                 image_present=t.snap.images.get(t.settings.acme_image, False))
    failed = []
    for domain in names:
        with t.progress.step(f"renew the certificate of {domain}", "certs"):
            result = t.runner.change(acme.renew(domain, wait=t.settings.cert_wait),
                                     check=False, timeout=max(t.settings.cert_wait, 30))
        if not result.ok:
            failed.append(domain)
    return failed


def certificate_rows(runner: Runner, domains: list[str], tls_on: bool) -> list[dict[str, str]]:
    """Per domain: how it is served, the certificate's issuer, serial and expiry, and the
    certificate container's last result (for dockyard status)."""
    last_results = runner.read_one(acme.status())
    rows = []
    for domain in domains:
        if not (tls_on and acme.wants_tls(domain)):
            reason = "TLS is off for this app" if not tls_on else "a local name or an address"
            rows.append({"domain": domain, "https": f"no: plain HTTP ({reason}); HTTPS answers "
                         "with the default certificate", "issuer": "", "expires": "",
                         "serial": "", "last": ""})
            continue
        cert = installed(runner, domain)
        last = last_results.get(domain)
        rows.append({
            "domain": domain,
            "https": "yes" if cert else "waiting for a certificate",
            "issuer": cert.get("Issuer", ""), "expires": cert.get("notAfter", ""),
            "serial": cert.get("Serial", ""),
            "last": f"{last[1]} at {last[0]}" + (f": {last[2]}" if last[2] else "")
            if last else "",
        })
    return rows
