"""`dockyard domains add|remove`: change an app's host names without a deploy.

The server's list (route.json) is the truth: deploys add the file's [web] domains to it and
warn about names only the server has. Adding a name routes it at once (Runtime API) and asks
for its certificate; removing one stops routing it and drops its HTTPS redirect at once
(the certificate container drops it from its lists too; its certificate is kept).
"""

from __future__ import annotations

import dataclasses

from dockyard import values
from dockyard.certs import acme
from dockyard.config.model import Config
from dockyard.errors import DockyardError
from dockyard.host.command import Command
from dockyard.host.runner import Runner
from dockyard.router import config as rc
from dockyard.state.snapshot import Routes

from . import tls
from .progress import Progress
from .target import locked, prepare


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
    with locked(runner, config, progress, "domains") as t:
        prepare(t, create=False)
        assert t.route is not None
        missing = [n for n in remove if n not in t.route.domains]
        if missing:
            raise DockyardError("DY005", f"{missing[0]} is not one of {t.app}'s domains "
                                f"({', '.join(t.route.domains) or 'none'})")

        def plan(routes: Routes) -> rc.Route:
            mine = routes.of(t.app) or t.route
            assert mine is not None
            domains = [d for d in mine.domains if d not in remove]
            return dataclasses.replace(mine, domains=[*domains,
                                                      *(d for d in add if d not in domains)])

        before = acme.tls_domains(t.route.domains, t.route.tls)
        then: list[Command] = []
        if t.snap.certs is not None and any(n in before for n in remove):
            then.append(acme.sync())
        listed = ", ".join(plan(t.snap.routes).domains) or "none"
        route = t.writer().commit(t.app, plan, why=f"record {t.app}'s domains: {listed}",
                                  then=then)
        assert route is not None
        t.route = route
        waiting = tls.secure(t) if add else []
        runner.flush_audit()
        return route.domains, waiting
