"""Commands for the dockyard-router container and its files. Builders only: no I/O."""

from __future__ import annotations

from dockyard.config.model import ProxyConfig
from dockyard.docker.networks import ROUTER_NETWORK
from dockyard.host.command import Command, change
from dockyard.router import config as rc
from dockyard.state import paths

NAME = "dockyard-router"
ROUTER_DIR = f"{paths.ROOT}/router"
ETC_DIR = f"{ROUTER_DIR}/etc"
RUN_DIR = f"{ROUTER_DIR}/run"
API_SOCKET = f"{RUN_DIR}/admin.sock"  # the same socket, seen from the server
LOG_OPTS = ["--log-driver=json-file", "--log-opt=max-size=10m", "--log-opt=max-file=3"]


def remove() -> Command:
    return change(["docker", "rm", "-f", "--", NAME],
                  "remove the old router container; its replacement starts right after")


def start() -> Command:
    return change(["docker", "start", "--", NAME], "start the stopped router")


def _on(settings: ProxyConfig) -> str:
    """The address part of --publish: none for 0.0.0.0 (Docker's default: every IPv4 and
    IPv6 address), else ``ADDR:``."""
    return "" if settings.bind == "0.0.0.0" else f"{settings.bind}:"


def run(settings: ProxyConfig, *, gid: int) -> Command:
    return change(
        ["docker", "run", "-d", f"--name={NAME}",
         "--label=dockyard.role=router",
         f"--network={ROUTER_NETWORK}",
         "--restart=unless-stopped", "--init", *LOG_OPTS,
         f"--group-add={gid}",
         f"--publish={_on(settings)}{settings.http_port}:{rc.HTTP_PORT}",
         f"--publish={_on(settings)}{settings.https_port}:{rc.HTTPS_PORT}",
         f"--volume={ETC_DIR}:{rc.CONFIG_DIR}:ro",
         f"--volume={RUN_DIR}:{rc.RUN_DIR}",
         "--", settings.router_image],
        f"start the router: it publishes ports {settings.http_port} and {settings.https_port} "
        f"(on {settings.bind}) and routes each request to its app by host name",
    )
