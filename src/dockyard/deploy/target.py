"""Everything a deploy-like command needs about one app on one server, prepared once.

``prepare`` is idempotent: it creates the state directory, the app network and the router
when missing, checks the server-wide [proxy] settings, and gives the app its router slot the
first time. A deploy that died half-way is repaired by running it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.config.model import Config, ProxyConfig
from dockyard.docker import networks
from dockyard.errors import DockyardError
from dockyard.host.runner import Runner
from dockyard.router import config as rc
from dockyard.router.ensure import ensure_router, read_routes, route_json
from dockyard.router.routes import check_domains_free
from dockyard.server.setup import Identity, state_dir_commands
from dockyard.state import env as env_state
from dockyard.state import paths, snapshot
from dockyard.state import proxy as proxy_state
from dockyard.state.files import write_files
from dockyard.state.lock import Lock
from dockyard.state.releases import AppState, parse_state, read_state

from .progress import Progress


@dataclass
class Target:
    runner: Runner
    config: Config
    progress: Progress
    settings: ProxyConfig = field(default_factory=ProxyConfig)
    who: Identity = field(default_factory=lambda: Identity("root", 0, 0))
    state: AppState = field(default_factory=lambda: AppState([], None, None))
    route: rc.Route | None = None
    #: (merged, server) environment, read with the snapshot
    env_cache: tuple[dict[str, str], dict[str, str]] | None = None
    #: what prepare() read from the server
    snap: snapshot.Snapshot = field(default_factory=snapshot.Snapshot)

    @property
    def app(self) -> str:
        return self.config.app.name

    @property
    def network(self) -> str:
        return networks.app_network(self.app)

    @property
    def app_dir(self) -> str:
        return paths.app_dir(self.app)

    def reload_state(self) -> AppState:
        self.state = parse_state(self.runner.query(read_state(self.app)).out)
        return self.state


def prepare(t: Target, *, create: bool = True) -> None:
    """State dir, proxy settings, app network, router, route slot. ``create=False`` (restart,
    rollback) still repairs the router but requires the app to exist.

    One read-only round trip answers every question; the server-wide lock is taken only when
    something server-wide must change (router missing or stopped, a network to join, a new
    slot to give out)."""
    runner = t.runner
    snap = snapshot.parse(runner.query(snapshot.command(t.app)).out)
    t.snap = snap
    runner.add_secrets(env_state.redactable(snap.env))
    t.env_cache = ({**t.config.env, **snap.env}, snap.env)
    if not snap.state_dir:
        runner.run_all(state_dir_commands(snap.who))
        snap.state_dir = True
    t.who = snap.who
    t.settings = proxy_state.effective(t.config, snap.proxy)
    if snap.proxy is None:
        runner.change(proxy_state.write_command(t.settings))
    t.state = snap.app
    if not create and not t.state.releases:
        raise DockyardError("DY055", f"{t.app} has not been deployed to "
                            f"{runner.host.label} yet; run: dockyard deploy")
    if t.network not in snap.networks:
        runner.change(networks.create(t.network, app=t.app))
        snap.networks.add(t.network)
    mine = next((r for r in snap.routes if r.app == t.app), None)
    if snap.router_running and t.network in snap.router_networks and mine is not None:
        t.route = _update_route(t, mine, snap.routes)
        return
    with Lock(runner.host, None, f"{runner.invocation.subcommand} {t.app}",
              dry_run=runner.dry_run, wait=30):
        ensure_router(runner, t.settings, gid=t.who.gid, app_network=t.network)
        t.route = allocate_route(t)


def allocate_route(t: Target) -> rc.Route:
    """The app's router slot: kept from its route.json, or the lowest free one (read again
    here, under the server-wide lock, so two first deploys never take the same slot)."""
    routes = read_routes(t.runner)
    mine = next((r for r in routes if r.app == t.app), None)
    return _update_route(t, mine, routes) if mine is not None else _new_route(t, routes)


def _update_route(t: Target, mine: rc.Route, routes: list[rc.Route]) -> rc.Route:
    """Port and health settings follow the file; domains must not belong to another app."""
    cfg = t.config
    check_domains_free(t.app, cfg.web.domains, routes)
    extra = [d for d in mine.domains if d not in cfg.web.domains]
    if extra:
        t.progress.warn(f"the server also routes {', '.join(extra)} to {t.app} (added with "
                        "dockyard domains add); they stay: the server's list is the truth "
                        "(dockyard domains remove NAME to drop one)")
    mine.port = cfg.web.port
    mine.health_path = cfg.web.healthcheck
    mine.health_interval_ms = round(cfg.web.healthcheck_interval * 1000)
    mine.health_timeout_ms = round(cfg.web.healthcheck_timeout * 1000)
    return mine


def _new_route(t: Target, routes: list[rc.Route]) -> rc.Route:
    used = {r.slot for r in routes}
    free = [s for s in range(1, rc.SLOTS + 1) if s not in used]
    if not free:
        raise DockyardError(
            "DY042", f"the router on {t.runner.host.label} already serves {rc.SLOTS} apps, "
            "its maximum; remove an app (dockyard remove) or use another server")
    mine = _update_route(t, rc.Route(app=t.app, slot=free[0], port=t.config.web.port), routes)
    # claim the slot right away (under the server lock) so no other app takes it
    t.runner.change(write_files(t.app_dir, {"route.json": route_json(mine).encode()},
                                f"give {t.app} router slot {mine.backend}", mode=0o644))
    return mine
