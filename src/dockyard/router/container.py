"""Commands for the dockyard-router container itself. Builders only: no I/O."""

from __future__ import annotations

import shlex

from dockyard.config.model import ProxyConfig
from dockyard.host.command import Command, change, query
from dockyard.router import config as haproxy
from dockyard.state import paths

NAME = "dockyard-router"
ROUTER_DIR = f"{paths.ROOT}/router"
LOG_OPTS = ["--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3"]


def exists() -> Command:
    return query(["docker", "ps", "-a", "--filter", f"name=^{NAME}$", "--format", "{{.Names}}"],
                 "is there a router on this server?")


def write_config(text: str) -> Command:
    script = (f"mkdir -p {ROUTER_DIR} && chmod 0755 {ROUTER_DIR} && "
              f"cat > {ROUTER_DIR}/haproxy.cfg.tmp && chmod 0644 {ROUTER_DIR}/haproxy.cfg.tmp && "
              f"mv {ROUTER_DIR}/haproxy.cfg.tmp {ROUTER_DIR}/haproxy.cfg")
    return change(["sh", "-c", script],
                  "write the router's configuration, rebuilt from Dockyard's state, so a "
                  "restarted router comes back routing every app",
                  stdin=text.encode(), stdin_label="<haproxy.cfg>")


def remove() -> Command:
    return change(["docker", "rm", "-f", NAME],
                  "remove the old router container; its replacement starts right after")


def run(settings: ProxyConfig) -> Command:
    return change(
        ["docker", "run", "-d", "--name", NAME,
         "--label", "dockyard.role=router",
         "--restart", "unless-stopped", *LOG_OPTS,
         "-p", f"{settings.http_port}:{haproxy.HTTP_PORT}",
         "-p", f"{settings.https_port}:{haproxy.HTTPS_PORT}",
         "-v", f"{ROUTER_DIR}:{haproxy.CONFIG_DIR}:ro",
         settings.router_image],
        f"start the router: it publishes ports {settings.http_port} and {settings.https_port} "
        "and routes each request to its app by host name",
    )


def recreate(settings: ProxyConfig) -> list[Command]:
    return [write_config(haproxy.render()), remove(), run(settings)]


def describe(commands: list[Command]) -> str:
    return "\n".join(shlex.join(c.argv) for c in commands)
