"""Everything a deploy-like command needs about one app on one server, read once.

``locked`` takes the app's lock and reads the server's state in the same round trip (the
facts of state/snapshot.py); ``prepare`` then brings the server to what the command needs
(the state directory, the proxy settings, the app network, the router, the app's router
slot), idempotently and in as few round trips as it can: a deploy that died half-way is
repaired by running it again.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from dockyard.cluster import swarm
from dockyard.config.model import Config, ProxyConfig
from dockyard.docker import networks
from dockyard.errors import DockyardError
from dockyard.host.command import Command
from dockyard.host.runner import Runner
from dockyard.host.spec import HostSpec
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router.ensure import ensure_router
from dockyard.router.writer import Writer
from dockyard.server.setup import state_dir_commands
from dockyard.state import env as env_state
from dockyard.state import paths, snapshot
from dockyard.state import proxy as proxy_state
from dockyard.state.releases import AppState
from dockyard.state.snapshot import Routes, Snapshot

from .progress import Progress


@dataclass
class Target:
    runner: Runner
    config: Config
    progress: Progress
    snap: Snapshot = field(default_factory=Snapshot)
    settings: ProxyConfig = field(default_factory=ProxyConfig)
    route: rc.Route | None = None
    #: routed processes after web (deploy/routed.py): process -> its own route
    extra_routes: dict[str, rc.Route] = field(default_factory=dict)
    #: with several [server] hosts: the other hosts' targets (their routers and routes);
    #: this one is the first host's, where the app's records live
    nodes: list[Target] = field(default_factory=list)
    #: deploy --image in a cluster: (registry, user, password) each node logs in with to
    #: pull it (None: no [registry] for that image)
    pull_login: tuple[str, str, str] | None = None

    @property
    def cluster(self) -> bool:
        return self.config.server.cluster

    @property
    def everywhere(self) -> list[Target]:
        """Every host's target, the first host's first."""
        return [self, *self.nodes]

    @property
    def app(self) -> str:
        return self.config.app.name

    @property
    def network(self) -> str:
        return networks.app_network(self.app)

    @property
    def app_dir(self) -> str:
        return paths.app_dir(self.app)

    @property
    def state(self) -> AppState:
        return self.snap.app

    @property
    def env(self) -> tuple[dict[str, str], dict[str, str]]:
        """(merged, server): the server's values (secrets) over dockyard.toml's [env]."""
        return {**self.config.env, **self.snap.env}, self.snap.env

    def writer(self) -> Writer:
        return Writer(self.runner, self.settings, self.snap.who.gid, self.snap.routes)


def read(runner: Runner, config: Config, progress: Progress) -> Target:
    """The facts without the lock (status, read-only commands)."""
    names = snapshot.facts(config.app.name, config)
    t = _target(runner, config, progress, list(names), runner.read(*names.values()))
    if config.server.cluster:
        t.nodes = [_target(peer, config, progress, list(names), peer.read(*names.values()))
                   for peer in runner.peers]
    return t


@contextmanager
def locked(runner: Runner, config: Config, progress: Progress, what: str, *,
           wait: float = 0.0) -> Iterator[Target]:
    """Hold the app's lock and read the server's state under it, in one round trip (in a
    cluster: on every host, the first host's first)."""
    names = snapshot.facts(config.app.name, config)
    with runner.lock(config.app.name, what, wait=wait, read=list(names.values())) as values:
        t = _target(runner, config, progress, list(names), values)
        if not config.server.cluster:
            yield t
            return
        with ExitStack() as stack:
            for peer in runner.peers:
                got = stack.enter_context(peer.lock(config.app.name, what, wait=wait,
                                                    read=list(names.values())))
                t.nodes.append(_target(peer, config, progress, list(names), got))
            yield t


def _target(runner: Runner, config: Config, progress: Progress, names: list[str],
            values: list[object]) -> Target:
    snap = snapshot.assemble(names, values)
    runner.add_secrets(env_state.redactable(snap.env))
    runner.scripts_ready = snap.scripts
    t = Target(runner, config, progress, snap)
    t.settings = proxy_state.effective(config, snap.proxy)
    # a copy: the command changes its route, the snapshot keeps what the server has
    t.route = copy.deepcopy(snap.routes.of(t.app))
    return t


def prepare(t: Target, *, create: bool = True) -> None:
    """State dir, proxy settings, app network, router, route slot. ``create=False`` (restart,
    rollback) still repairs the router but requires the app to exist. Nothing to do (the
    usual case) costs no round trip."""
    runner = t.runner
    if not create and not t.state.releases:
        raise DockyardError("DY055", f"{t.app} has not been deployed to "
                            f"{runner.host.label} yet; run: dockyard deploy")
    if t.cluster:
        _prepare_cluster(t)
        return
    _prepare_node(t)


def _prepare_cluster(t: Target) -> None:
    """The swarm must be there (cluster init); the app's overlay network is created through
    the first host (a manager); then every host is prepared as one server is, its router
    joined to that network."""
    runner = t.runner
    seen, kind, members = runner.read(swarm.membership(), networks.driver(t.network),
                                      swarm.nodes())
    if not (seen.active and seen.manager) and not runner.dry_run:
        raise DockyardError("DY083", f"{runner.host.label} (the first of [server] hosts) is "
                            "not a swarm manager; run: dockyard cluster init")
    if kind and kind != "overlay":
        raise DockyardError("DY086", f"{t.app}'s network on {runner.host.label} is a {kind} "
                            "network (a one-server deploy of the same app): remove that app "
                            "there first (dockyard remove with host = that server)")
    if not kind:
        runner.change(networks.create_overlay(t.network, app=t.app))
    for node in t.everywhere:
        node.snap.networks.add(t.network)
        _prepare_node(node)
    addresses = []
    for host in t.config.server.all_hosts:
        found = next((n for n in members if n.host == host), None)
        addresses.append(found.addr if found else HostSpec.parse(host).hostname)
    for i, node in enumerate(t.everywhere):
        _set_peers(node, [(addresses[j], other.settings.http_port)
                          for j, other in enumerate(t.everywhere) if j != i])


def _set_peers(t: Target, peers: list[tuple[str, int]]) -> None:
    """The other nodes' routers, where this router passes on an ACME challenge its own
    client does not know (router/config.py, backend acme). Only what differs is sent; a
    router started by an earlier version has no peer slots (it answers its own only)."""
    runner = t.runner
    answer = runner.api(api.show_servers_state("acme"), check=False)
    current = {s.server: s for s in api.parse_servers_state(answer)}
    for i, name in enumerate(rc.peer_names()):
        slot = current.get(name)
        if slot is None:
            continue
        if i < len(peers):
            addr, port = peers[i]
            if slot.address != addr or slot.admin_state & 1:
                runner.api(api.ApiCall(f"set server acme/{name} addr {addr} port {port}",
                                       f"pass ACME challenges this node does not know on to "
                                       f"the router on {addr}"), check=False)
                runner.api(api.ApiCall(f"set server acme/{name} state ready",
                                       "that router may answer them"), check=False)
        elif not slot.admin_state & 1:
            runner.api(api.ApiCall(f"set server acme/{name} state maint",
                                   "that node is no longer in the cluster"), check=False)


def _prepare_node(t: Target) -> None:
    runner, snap = t.runner, t.snap
    changes: list[Command] = []
    if not snap.state_dir:
        changes += state_dir_commands(snap.who)
        snap.state_dir = True
    if snap.proxy is None:
        changes.append(proxy_state.write_command(t.settings))
    if t.network not in snap.networks:
        changes.append(networks.create(t.network, app=t.app))
        snap.networks.add(t.network)
    runner.change_all(changes)
    if snap.router.on_legacy_network:
        t.progress.warn(
            f"the router on {runner.host.label} is on its earlier network "
            f"({networks.LEGACY_ROUTER_NETWORK}): Docker may move its published ports when an "
            "app's network comes or goes, refusing connections for a moment; run `dockyard "
            "router apply --yes` once (it restarts the router) to move it")
    if not (snap.router.running and t.network in snap.router.networks):
        ensure_router(runner, t.settings, snap, app_network=t.network)
    if t.route is None:
        t.route = allocate_route(t)
    else:
        t.route = follow_config(t, t.route)


def follow_config(t: Target, route: rc.Route) -> rc.Route:
    """Port and health settings follow the file; the server's domain list is the truth
    (deploys add the file's, `domains remove` drops them)."""
    cfg = t.config
    extra = [d for d in route.domains if d not in cfg.web.domains]
    if extra:
        t.progress.warn(f"the server also routes {', '.join(extra)} to {t.app} (added with "
                        "dockyard domains add); they stay: the server's list is the truth "
                        "(dockyard domains remove NAME to drop one)")
    route.port = cfg.web.port
    route.health_path = cfg.web.healthcheck
    route.health_interval_ms = round(cfg.web.healthcheck_interval * 1000)
    route.health_timeout_ms = round(cfg.web.healthcheck_timeout * 1000)
    route.cluster = cfg.server.cluster
    route.response_timeout_ms = round(cfg.web.response_timeout * 1000)
    route.domains = [*route.domains, *(d for d in cfg.web.domains if d not in route.domains)]
    return route


def free_slot(t: Target, routes: Routes, name: str) -> int:
    """The lowest router slot no other route in ``routes`` holds, for route ``name``."""
    used = {r.slot for r in routes.others(name)}
    free = [s for s in range(1, rc.SLOTS + 1) if s not in used]
    if not free:
        raise DockyardError(
            "DY042", f"the router on {t.runner.host.label} already serves {rc.SLOTS} "
            "apps, its maximum; remove an app (dockyard remove) or use another server")
    return free[0]


def allocate_route(t: Target) -> rc.Route:
    """The app's router slot: the lowest free one, claimed by writing route.json (under the
    router lock, if no other app changed the routes meanwhile: two first deploys never take
    the same slot)."""
    writer = t.writer()

    def claim(routes: Routes) -> rc.Route:
        """The lowest slot free in ``routes`` (computed again when another app wrote)."""
        route = follow_config(t, rc.Route(app=t.app, slot=free_slot(t, routes, t.app),
                                          port=t.config.web.port, tls=t.config.web.tls))
        route.domains = list(t.config.web.domains)
        return route

    route = writer.commit(t.app, claim, why=f"give {t.app} a router slot", maps=False)
    assert route is not None
    t.snap.routes = writer.routes
    return route
