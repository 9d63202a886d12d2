"""Routed processes after web: a compose file may route several services, each on host names
of its own (``[compose] web = ["app", "admin"]``). The first is the app's web process; each
other one is a process with a router backend of its own: its route is keyed ``APP.PROCESS``
(``apps/APP.PROCESS/route.json``: a dot is never in an app's name, so no app can take it),
and the roll-out starts, checks and switches it with the app's release, as it does web.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from dockyard.compose.translate import Routed
from dockyard.docker import containers as ctr
from dockyard.host.command import Command
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.state.snapshot import Routes

from .target import Target, free_slot


def key(app: str, process: str) -> str:
    return f"{app}.{process}"


def is_part(app: str, route_app: str) -> bool:
    """Whether a route is one of ``app``'s routed processes."""
    return route_app.startswith(f"{app}.")


@dataclass
class Leg:
    """One routed process in a roll-out: its route, what its router has, the new containers
    and the slots they take."""

    process: str
    route: rc.Route
    specs: list[ctr.ContainerSpec] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)

    @property
    def placed(self) -> list[tuple[str, ctr.ContainerSpec]]:
        return list(zip(self.servers, self.specs, strict=True))


def _follow(t: Target, route: rc.Route, port: int, domains: list[str], health: str) -> None:
    web = t.config.web
    route.port, route.domains, route.health_path = port, list(domains), health
    route.health_interval_ms = round(web.healthcheck_interval * 1000)
    route.health_timeout_ms = round(web.healthcheck_timeout * 1000)
    route.tls = web.tls


def prepare(t: Target) -> None:
    """Each routed process's route: followed from the file, or given a slot (claimed under
    the router lock, as an app's first deploy claims one)."""
    composition = t.config.composition
    t.extra_routes = {}
    if composition is None:
        return
    for process, want in sorted(composition.routes.items()):
        name = key(t.app, process)
        found = t.snap.routes.of(name)
        if found is not None:
            route = copy.deepcopy(found)
            _follow(t, route, want.port, want.domains, want.healthcheck)
            t.extra_routes[process] = route
            continue
        writer = t.writer()

        def claim(routes: Routes, name: str = name, want: Routed = want) -> rc.Route:
            new = rc.Route(app=name, slot=free_slot(t, routes, name), port=want.port)
            _follow(t, new, want.port, want.domains, want.healthcheck)
            return new

        claimed = writer.commit(name, claim, why=f"give {name} a router slot", maps=False)
        assert claimed is not None
        t.snap.routes = writer.routes
        t.extra_routes[process] = claimed


def legs(t: Target, procs: list[ctr.ContainerSpec]) -> tuple[list[Leg],
                                                           list[ctr.ContainerSpec]]:
    """The routed processes' containers taken out of ``procs``; (legs, the other procs)."""
    if not t.extra_routes:
        return [], procs
    out = [Leg(process, route, [p for p in procs if p.process == process])
           for process, route in sorted(t.extra_routes.items())]
    return out, [p for p in procs if p.process not in t.extra_routes]


def stale(t: Target) -> list[rc.Route]:
    """Routes of processes the file no longer routes."""
    return [r for r in t.snap.routes.routes if is_part(t.app, r.app)
            and r.app.split(".", 1)[1] not in t.extra_routes]


def switch(t: Target, leg: Leg, retiring: list[str], release: str,
           retire: Command | None) -> None:
    """Like web's switch: the new slots in rotation, the old ones draining, the route
    recorded; then the old containers retired after their drain."""
    route = leg.route
    route.servers = {server: spec.name for server, spec in leg.placed}
    before = [*(api.set_server_state(route.backend, s, "ready") for s in leg.servers),
              *(api.set_server_state(route.backend, s, "drain") for s in retiring)]
    writer = t.writer()
    writer.commit(route.app, route, why=f"switch {route.app} to {release}", before=before,
                  then=[retire] if retire is not None else [],
                  if_fails="the router serves the new release already; run the command "
                  "again to record it")
    t.snap.routes = writer.routes


def unroute(t: Target, route: rc.Route, why: str) -> None:
    """A route the app no longer has: its slots parked, its files gone."""
    park: list[api.ApiCall] = []
    for server in rc.server_names(route.slot):
        park += [api.set_server_state(route.backend, server, "drain"),
                 *api.park_server(route.backend, server)]
    writer = t.writer()
    writer.commit(route.app, None, why=why, after=park)
    t.snap.routes = writer.routes
