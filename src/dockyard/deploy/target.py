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
from dockyard.router.ensure import ensure_network, ensure_router, read_routes, route_json
from dockyard.server.setup import Identity, ensure_state_dir, identity
from dockyard.state import paths
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


def read_settings(runner: Runner) -> ProxyConfig | None:
    raw = runner.query(proxy_state.read_command(), check=False)
    return proxy_state.parse(raw.out) if raw.ok else None


def prepare(t: Target, *, create: bool = True) -> None:
    """State dir, proxy settings, app network, router, route slot. ``create=False`` (restart,
    rollback) still repairs the router but requires the app to exist."""
    runner = t.runner
    ensure_state_dir(runner)
    t.who = identity(runner)
    server = read_settings(runner)
    t.settings = proxy_state.effective(t.config, server)
    if server is None:
        runner.change(proxy_state.write_command(t.settings))
    t.reload_state()
    if not create and not t.state.releases:
        raise DockyardError("DY055", f"{t.app} has not been deployed to "
                            f"{runner.host.label} yet; run: dockyard deploy")
    ensure_network(runner, t.network, app=t.app)
    with Lock(runner.host, None, f"{runner.invocation.subcommand} {t.app}",
              dry_run=runner.dry_run, wait=30):
        ensure_router(runner, t.settings, gid=t.who.gid, app_network=t.network)
        t.route = allocate_route(t)


def allocate_route(t: Target) -> rc.Route:
    """The app's router slot: kept from its route.json, or the lowest free one."""
    cfg = t.config
    routes = read_routes(t.runner)
    mine = next((r for r in routes if r.app == t.app), None)
    for other in routes:
        if other.app == t.app:
            continue
        clash = set(other.domains) & set(cfg.web.domains)
        if clash:
            raise DockyardError(
                "DY003", f"web.domains: {sorted(clash)[0]} is already routed to app "
                f"{other.app} on this server; remove it there first, or choose another name")
    if mine is None:
        used = {r.slot for r in routes}
        free = [s for s in range(1, rc.SLOTS + 1) if s not in used]
        if not free:
            raise DockyardError(
                "DY042", f"the router on {t.runner.host.label} already serves {rc.SLOTS} apps, "
                "its maximum; remove an app (dockyard remove) or use another server")
        mine = rc.Route(app=t.app, slot=free[0], port=cfg.web.port)
        fresh = True
    else:
        fresh = False
    mine.port = cfg.web.port
    mine.health_path = cfg.web.healthcheck
    mine.health_interval_ms = round(cfg.web.healthcheck_interval * 1000)
    mine.health_timeout_ms = round(cfg.web.healthcheck_timeout * 1000)
    if fresh:
        # claim the slot right away (under the server lock) so no other app takes it
        t.runner.change(write_files(t.app_dir, {"route.json": route_json(mine).encode()},
                                    f"give {t.app} router slot {mine.backend}", mode=0o644))
    return mine
