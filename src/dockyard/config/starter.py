"""``dockyard init``: a commented starter dockyard.toml.

It reads an existing Dockerfile for its EXPOSE port so the first deploy routes to the right
port without the person having to look it up.
"""

from __future__ import annotations

import re
from pathlib import Path

import tomli_w

from dockyard import values

_EXPOSE = re.compile(r"^[ \t]*EXPOSE[ \t]+([0-9]{1,5})\b", re.IGNORECASE | re.MULTILINE)


def exposed_port(dockerfile: Path) -> int | None:
    """The first port a Dockerfile EXPOSEs, if any (and if it is a port)."""
    try:
        match = _EXPOSE.search(dockerfile.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    if match is None:
        return None
    try:
        return values.port(match.group(1))
    except ValueError:
        return None


def default_name(directory: Path) -> str:
    """The directory's name made into a valid app name (whatever the directory is called)."""
    name = re.sub(r"[^a-z0-9]+", "-", directory.resolve().name.lower()).strip("-")
    if not name or not name[0].isalpha():  # "2048" -> "app-2048", "" -> "app"
        name = f"app-{name}"
    name = name[:40].strip("-")
    return name if _valid(name) else "app"


def _valid(name: str) -> bool:
    try:
        values.app_name(name)
    except ValueError:
        return False
    return True


def toml_value(value: object) -> str:
    """A value as TOML writes it (quotes and escapes included): never pasted raw."""
    return tomli_w.dumps({"v": value})[len("v = "):].rstrip("\n")


def starter(directory: Path, *, host: str = "ssh://root@203.0.113.5:22") -> str:
    dockerfile = directory / "Dockerfile"
    has_dockerfile = dockerfile.exists()
    port = exposed_port(dockerfile) if has_dockerfile else None
    name = default_name(directory)
    if has_dockerfile:
        port_note = (f"from EXPOSE {port} in your Dockerfile" if port
                     else "your Dockerfile has no EXPOSE: check this")
        build = (
            "[build]\n"
            '# found ./Dockerfile: it is built on the server (no registry needed)\n'
            'context = "."\n'
            'dockerfile = "Dockerfile"\n'
            '# args = { PYTHON_VERSION = "3.12" }   # --build-arg values (not for secrets)\n'
        )
    else:
        port_note = "no Dockerfile found: set the port your app listens on"
        build = (
            "[build]\n"
            "# no Dockerfile here yet: write one, or deploy an existing image instead:\n"
            '# image = "ghcr.io/you/app:1.0"\n'
            'context = "."\n'
        )
    return f"""\
# dockyard.toml: how Dockyard deploys this app. Reference: docs/config.md
# Only [app] name and [server] host are required; every other key shows its default.

[app]
name = {toml_value(name)}                 # lowercase letters, digits, dashes; unique on the server

[server]
host = {toml_value(host)}   # or "local" for the Docker engine on this machine

{build}
[web]
port = {port or 8080}                     # {port_note}
domains = [{toml_value(name + ".localhost")}]    # host names routed to this app
healthcheck = "/up"             # a 2xx/3xx answer here means the container is healthy

# [processes]                   # extra long-running processes from the same image
# worker = ["python", "worker.py"]

# [release]                     # run once per deploy before the switch (migrations)
# command = ["python", "manage.py", "migrate"]

# [env]                         # plain settings; secrets: dockyard env set KEY -
# GREETING = "hi"

[deploy]
drain_timeout = "30s"           # old container finishes in-flight requests
stop_timeout = "10s"            # SIGTERM to SIGKILL
keep_releases = 5               # images kept for rollback

# [proxy]                       # server-wide, shared by every app on the server;
# http_port = 80                # change with: dockyard router apply
# https_port = 443
"""


COMPOSE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")


def find_compose(directory: Path) -> Path | None:
    """The compose file docker compose would read there (its own order of names)."""
    for name in COMPOSE_NAMES:
        if (directory / name).is_file():
            return directory / name
    return None


def compose_starter(directory: Path, file: str, web: str, port: int | None, *,
                    host: str = "ssh://root@203.0.113.5:22") -> str:
    """A dockyard.toml that points at a compose file: the file stays the source of truth,
    so only what it cannot say is written here (the server, the domains)."""
    name = default_name(directory)
    port_line = (f"# port = {port}                 # from {file}; write it here to override"
                 if port else "port = 8080                     # the port the service listens "
                 "on: the compose file does not say")
    return f"""\
# dockyard.toml: deploys the services of {file} with zero downtime. Reference: docs/compose.md
# The compose file stays the source of truth: edit it, then run dockyard deploy.

[app]
name = {toml_value(name)}                 # lowercase letters, digits, dashes; unique on the server

[server]
host = {toml_value(host)}   # or "local" for the Docker engine on this machine

[compose]
file = {toml_value(file)}
web = {toml_value(web)}                     # the routed service: the router sends it the traffic
# profiles = ["prod"]           # as docker compose --profile

[web]                           # applies to the routed service
{port_line}
domains = [{toml_value(name + ".localhost")}]    # host names routed to it
healthcheck = "/up"             # a 2xx/3xx answer here means the container is healthy

[deploy]
drain_timeout = "30s"           # old container finishes in-flight requests
keep_releases = 5               # images kept for rollback
"""
