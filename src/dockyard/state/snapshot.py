"""Everything a deploy needs to know about the server, read in one round trip.

Each extra SSH command costs a round trip (about 0.1 s here, more over the internet), so the
read-only questions a deploy starts with are asked by one small shell script whose output
has one section per question.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field

from dockyard.accessories import commands as acc_commands
from dockyard.accessories import cron
from dockyard.certs import acme
from dockyard.config.model import ProxyConfig
from dockyard.host.command import Command, query
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.server.setup import Identity, parse_identity
from dockyard.state import env as env_state
from dockyard.state import paths
from dockyard.state import proxy as proxy_state
from dockyard.state.releases import AppState, parse_state, read_state

SECTIONS = ("statedir", "id", "proxy", "app", "networks", "router", "routes", "env",
            "accessories", "cron", "certs")


def command(app: str) -> Command:
    app_script = read_state(app).argv[2]
    script = "; ".join([
        f"echo --statedir; [ -d {paths.ROOT} ] && echo yes",
        "echo --id; id -un; id -u; id -g",
        f"echo --proxy; cat {paths.PROXY_SETTINGS} 2>/dev/null; echo",
        f"echo --app; {{ {app_script}; }} | sed 's/^--/---/'",
        "echo --networks; docker network ls --format '{{.Name}}' 2>/dev/null",
        f"echo --router; {shlex.join(router.inspect().argv)} 2>/dev/null",
        f"echo --routes; cat {paths.APPS}/*/route.json 2>/dev/null",
        f"echo --env; cat {env_state.env_path(app)} 2>/dev/null",
        f"echo --accessories; {shlex.join(acc_commands.list_all(app).argv)} 2>/dev/null",
        f"echo --cron; {shlex.join(cron.inspect(app).argv)} 2>/dev/null",
        f"echo --certs; {shlex.join(acme.inspect().argv)} 2>/dev/null",
        "true",
    ])
    return query(["sh", "-c", script], f"read the server's state for {app} in one round trip")


@dataclass
class Snapshot:
    state_dir: bool = False
    who: Identity = field(default_factory=lambda: Identity("?", -1, -1))
    proxy: ProxyConfig | None = None
    app: AppState = field(default_factory=lambda: AppState([], None, None))
    networks: set[str] = field(default_factory=set)
    router_exists: bool = False
    router_running: bool = False
    router_networks: set[str] = field(default_factory=set)
    routes: list[rc.Route] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    accessories: dict[str, acc_commands.Running] = field(default_factory=dict)
    #: the backup scheduler: (config hash, state), or None when it does not exist
    cron: tuple[str, str] | None = None
    #: the certificate container: (config hash, state), or None
    certs: tuple[str, str] | None = None


def parse(text: str) -> Snapshot:
    parts: dict[str, list[str]] = {name: [] for name in SECTIONS}
    current = None
    for line in text.splitlines():
        if line.startswith("--") and not line.startswith("---") and line[2:] in parts:
            current = line[2:]
            continue
        if current is not None:
            parts[current].append(line)
    snap = Snapshot()
    snap.state_dir = "yes" in parts["statedir"]
    snap.who = parse_identity("\n".join(parts["id"]))
    snap.proxy = proxy_state.parse("\n".join(parts["proxy"]))
    app_text = "\n".join(line[1:] if line.startswith("---") else line for line in parts["app"])
    snap.app = parse_state(app_text)
    snap.networks = {line.strip() for line in parts["networks"] if line.strip()}
    router_text = "\n".join(parts["router"]).strip()
    if router_text:
        snap.router_exists = True
        snap.router_running, _, snap.router_networks = router.parse_inspect(router_text)
    for line in parts["routes"]:
        line = line.strip()
        if line:
            try:
                snap.routes.append(rc.Route(**json.loads(line)))
            except (TypeError, ValueError):
                continue
    snap.env = env_state.parse_env_file("\n".join(parts["env"]))
    snap.accessories = acc_commands.parse_list("\n".join(parts["accessories"]))
    cron_text = " ".join(parts["cron"]).split()
    if len(cron_text) == 2:
        snap.cron = (cron_text[0], cron_text[1])
    certs_text = " ".join(parts["certs"]).split()
    if len(certs_text) == 2:
        snap.certs = (certs_text[0], certs_text[1])
    return snap
