"""What runs now: per process, its container, release, health, uptime and domains."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from dockyard.accessories import commands as acc_commands
from dockyard.config.model import Config
from dockyard.docker import containers as ctr
from dockyard.errors import DockyardError
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.state import env as env_state
from dockyard.state import snapshot
from dockyard.state.releases import AppState, read_state


@dataclass
class ProcessStatus:
    process: str
    container: str
    release: str
    health: str
    uptime: str
    domains: list[str]
    memory_killed: bool = False

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class AccessoryStatus:
    name: str
    type: str
    container: str
    image: str
    state: str
    uptime: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def accessory_status(runner: Runner, app: str) -> list[AccessoryStatus]:
    found = runner.read_one(acc_commands.list_all(app))
    return [AccessoryStatus(r.name, r.kind, r.container, r.image, r.state, r.status)
            for _, r in sorted(found.items())]


def env_status(config: Config, state: AppState, server: dict[str, str]) -> str:
    """Whether the running release has the environment the server holds now."""
    current = state.live
    if current is None or not current.env_hash:
        return "none deployed" if current is None else "unknown"
    merged = {**config.env, **server}
    digest = hashlib.sha256(env_state.format_env(merged).encode()).hexdigest()[:16]
    return "applied" if digest == current.env_hash else "env changed, not applied"


@dataclass
class AppView:
    state: AppState
    rows: list[ProcessStatus]
    env: str
    accessories: list[AccessoryStatus]


def app_view(runner: Runner, config: Config) -> AppView:
    """Everything `status` shows, read in one round trip (plus the router's own view)."""
    app = config.app.name
    state, seen, server = runner.read(read_state(app), snapshot.app_containers(app),
                                      env_state.read(app))
    listed, found, retiring = seen.containers, seen.accessories, seen.retiring
    runner.add_secrets(env_state.redactable(server))
    router_status: dict[str, str] = {}
    if state.route is not None:
        try:
            stats = api.parse_stat(runner.api(api.show_stat()))
            states = api.parse_servers_state(runner.api(api.show_servers_state(
                state.route.backend)))
            # which container a slot serves: the names a restarted router resolved, and
            # the containers deploys recorded in route.json (slots get addresses at run time)
            names = {srv.server: srv.fqdn for srv in states if srv.fqdn not in ("-", "")}
            names.update(state.route.servers)
            for slot, container in names.items():
                st = stats.get((state.route.backend, slot))
                if st is not None:
                    router_status[container] = st.status
        except DockyardError:
            router_status = {}
    draining = {job.release for job in retiring}
    rows = []
    domains = state.route.domains if state.route else []
    for item in sorted(listed, key=lambda c: (c.process != "web", c.process, c.release)):
        if not item.process or item.process == "release":
            continue
        if (item.running and f"v{item.release}" in draining) or (
                item.running and retiring and item.release != state.current):
            health = "draining (being retired)"
        elif item.process == "web":
            health = router_status.get(item.name, "not routed" if item.running else item.state)
        else:
            health = "running" if item.running else item.state
        rows.append(ProcessStatus(_shown_process(config, item.process), item.name,
                                  f"v{item.release}", health,
                                  item.status, domains if item.process == "web" else []))
    kills = runner.read_one(ctr.memory_kills([r.container for r in rows])) if rows else {}
    for row in rows:
        if (kill := kills.get(row.container)) is not None:
            row.health = f"{row.health}; {kill.describe()}"
            row.memory_killed = True
    accessories = [AccessoryStatus(r.name, r.kind, r.container, r.image, r.state, r.status)
                   for _, r in sorted(found.items())]
    return AppView(state, rows, env_status(config, state, server), accessories)


def _shown_process(config: Config, process: str) -> str:
    """A compose app's process with the service it comes from: "web (app)"."""
    composition = config.composition
    service = composition.service_of(process) if composition is not None else process
    return process if service == process else f"{process} ({service})"
