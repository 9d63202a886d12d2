"""`dockyard domains add|remove`: change an app's host names without a deploy.

The server's list (route.json) is the truth: deploys add the file's [web] domains to it and
warn about names only the server has. Adding a name routes it at once (Runtime API) and asks
for its certificate; removing one stops routing it and drops its HTTPS redirect.
"""

from __future__ import annotations

from dockyard import values
from dockyard.certs import acme
from dockyard.config.model import Config
from dockyard.errors import DockyardError
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.router.ensure import read_routes, route_json, router_files
from dockyard.router.routes import check_domains_free
from dockyard.state.files import write_files
from dockyard.state.lock import Lock

from . import tls
from .progress import Progress
from .target import Target, prepare


def _check(names: list[str]) -> None:
    for name in names:
        try:
            values.domain(name)
        except ValueError as exc:
            raise DockyardError("DY005", str(exc)) from None


def change(runner: Runner, config: Config, progress: Progress, *, add: list[str],
           remove: list[str]) -> tuple[list[str], list[str]]:
    """Returns (the app's domains now, names still waiting for a certificate)."""
    _check(add + remove)
    t = Target(runner, config, progress)
    with Lock(runner.host, t.app, "domains", dry_run=runner.dry_run):
        prepare(t, create=False)
        assert t.route is not None
        route = t.route
        with Lock(runner.host, None, f"domains {t.app}", dry_run=runner.dry_run, wait=30):
            routes = read_routes(runner)
            check_domains_free(t.app, add, routes)
            missing = [n for n in remove if n not in route.domains]
            if missing:
                raise DockyardError("DY005", f"{missing[0]} is not one of {t.app}'s domains "
                                    f"({', '.join(route.domains) or 'none'})")
            route.domains = [d for d in route.domains if d not in remove]
            route.domains += [d for d in add if d not in route.domains]
            names = acme.tls_domains(route.domains, route.tls)
            runner.change(write_files(t.app_dir, {
                "route.json": route_json(route).encode(),
                "tls-domains": "".join(f"{d}\n" for d in names).encode()},
                f"record {t.app}'s domains: {', '.join(route.domains) or 'none'}", mode=0o644))
            others = [r for r in routes if r.app != t.app]
            runner.change(router.write_files(router_files(
                [*others, route], gid=t.who.gid, with_cert=False, settings=t.settings)))
        hosts = api.parse_map(runner.api(api.show_map(rc.HOSTS_MAP), socket=router.API_SOCKET))
        for name in add:
            for call in api.put_map(hosts, rc.HOSTS_MAP, name, route.backend):
                runner.api(call, socket=router.API_SOCKET)
        if remove:
            tls_map = api.parse_map(runner.api(api.show_map(rc.TLS_MAP),
                                               socket=router.API_SOCKET))
            for name in remove:
                if name in hosts:
                    runner.api(api.del_map(rc.HOSTS_MAP, name), socket=router.API_SOCKET)
                if name in tls_map:
                    runner.api(api.del_map(rc.TLS_MAP, name), socket=router.API_SOCKET)
            runner.change(tls.forget_redirects(remove))
        waiting = tls.secure(t) if add else []
        runner.flush_audit()
        return route.domains, waiting
