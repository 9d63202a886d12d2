"""Bringing the router to the state Dockyard's files describe, without restarting it.

``ensure_router`` creates the router when it is missing (first deploy), starts it when it is
stopped, and connects it to an app's network when it is not on it yet. None of this reloads a
running router. ``recreate_router`` exists for ``router apply`` only (ports and image are
fixed when a container starts).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict

from dockyard.certs.ensure import current_state, ensure_certs
from dockyard.certs.selfsigned import default_pem
from dockyard.config.model import ProxyConfig
from dockyard.docker import networks
from dockyard.docker.images import ensure_image
from dockyard.errors import DockyardError
from dockyard.host.command import query
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.state import paths

READY_TIMEOUT = 20.0


def read_routes(runner: Runner) -> list[rc.Route]:
    """Every app's route.json on the server (one JSON object per line)."""
    result = runner.query(query(["sh", "-c", f"cat {paths.APPS}/*/route.json 2>/dev/null; true"],
                                "read every app's routing state"))
    routes = []
    for line in result.out.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            routes.append(rc.Route(**json.loads(line)))
        except (TypeError, ValueError):
            continue
    return routes


def route_json(route: rc.Route) -> str:
    return json.dumps(asdict(route), sort_keys=True, separators=(",", ":")) + "\n"


def router_files(routes: list[rc.Route], *, gid: int, with_cert: bool,
                 settings: ProxyConfig | None = None) -> dict[str, bytes]:
    settings = settings or ProxyConfig()
    files = {"haproxy.cfg": rc.render(routes, socket_gid=gid, hsts=settings.hsts,
                                      tunnel_timeout_s=settings.tunnel_timeout).encode()}
    files.update({name: text.encode() for name, text in rc.render_maps(routes).items()})
    files["maintenance.html"] = rc.MAINTENANCE_HTML.encode()
    if with_cert:
        files["certs/default.pem"] = default_pem()
    return files


def write_router_files(runner: Runner, routes: list[rc.Route], gid: int,
                       settings: ProxyConfig) -> None:
    with_cert = not runner.query(router.has_default_cert(), check=False).ok
    files = router_files(routes, gid=gid, with_cert=with_cert, settings=settings)
    runner.change(router.write_files(files, private={"certs/default.pem"}))


def ensure_network(runner: Runner, name: str, *, app: str | None = None) -> None:
    if not runner.query(networks.exists(name), check=False).ok:
        runner.change(networks.create(name, app=app))


def ensure_router(runner: Runner, settings: ProxyConfig, *, gid: int,
                  app_network: str | None = None) -> bool:
    """Make sure the router runs and is on ``app_network``. True when it was (re)started."""
    ensure_network(runner, networks.ROUTER_NETWORK)
    state = runner.query(router.inspect(), check=False)
    started = False
    if not state.ok:
        routes = read_routes(runner)
        write_router_files(runner, routes, gid, settings)
        ensure_image(runner, settings.router_image)
        runner.change(router.run(settings, gid=gid))
        on: set[str] = {networks.ROUTER_NETWORK}
        for route in routes:
            if route.app != app_network:
                _connect(runner, networks.app_network(route.app), on)
        started = True
    else:
        running, _, on = router.parse_inspect(state.out)
        if not running:
            runner.change(router.start())
            started = True
    if app_network:
        _connect(runner, app_network, on)
    if started:
        wait_until_ready(runner)
    return started


def _connect(runner: Runner, network: str, on: set[str]) -> None:
    if network in on:
        return
    if runner.query(networks.exists(network), check=False).ok:
        runner.change(networks.connect(network, router.NAME))
        on.add(network)


def wait_until_ready(runner: Runner, timeout: float = READY_TIMEOUT) -> None:
    """Wait for the Runtime API to answer (the router has loaded its configuration)."""
    if runner.dry_run:
        runner.note("# wait until the router's Runtime API answers",
                    "the deploy changes the router through this API; if it never answers, "
                    "the router's last log lines are printed")
        return
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            answer = runner.api(api.show_info(), socket=router.API_SOCKET)
            if "Pid:" in answer:
                return
        except DockyardError as exc:
            last = exc.message
        time.sleep(0.3)
    logs = runner.query(query(["docker", "logs", "--tail=20", "--", router.NAME], "router logs"),
                        check=False)
    raise DockyardError("DY040", f"the router did not start within {timeout:g}s ({last}); "
                        "its last log lines follow",
                        [f"  {line}" for line in (logs.out + logs.err).splitlines()[-8:]])


def recreate_router(runner: Runner, settings: ProxyConfig, *, gid: int) -> None:
    routes = read_routes(runner)
    write_router_files(runner, routes, gid, settings)
    ensure_image(runner, settings.router_image)
    runner.change(router.remove())
    runner.change(router.run(settings, gid=gid))
    for route in routes:
        if runner.query(networks.exists(route.app), check=False).ok:
            runner.change(networks.connect(route.app, router.NAME))
    wait_until_ready(runner)
    # the certificate container lives in the router's network namespace: follow it
    certs = current_state(runner)
    if certs is not None:
        ensure_certs(runner, settings, gid=gid, current=certs, force=True)
