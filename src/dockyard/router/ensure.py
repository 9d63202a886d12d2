"""Bringing the router to the state Dockyard's files describe, without restarting it.

``ensure_router`` creates the router when it is missing (first deploy), starts it when it is
stopped, and connects it to an app's network when it is not on it yet. None of this reloads a
running router. ``recreate_router`` exists for ``router apply`` only (ports and image are
fixed when a container starts; a router on the earlier network, ``dockyard``, moves to
``Dockyard``: see docker/networks.py).
"""

from __future__ import annotations

from typing import NoReturn

from dockyard.certs.selfsigned import default_pem
from dockyard.config.model import ProxyConfig
from dockyard.docker import engine, networks
from dockyard.errors import DockyardError
from dockyard.host.command import Command, Wait, change, fact
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import container as router
from dockyard.router.writer import Writer
from dockyard.state.files import write_files
from dockyard.state.snapshot import Snapshot

READY_TIMEOUT = 20.0


def dirs() -> list[Command]:
    """The router's directories, with the modes it needs: its config readable (0755), the
    certificates only by its group (0750), the Runtime API socket's directory (0770)."""
    return [change(["install", "-d", "-m", "0755", router.ROUTER_DIR, router.ETC_DIR],
                   "the router's configuration directory, readable by the router"),
            change(["install", "-d", "-m", "0750", f"{router.ETC_DIR}/certs"],
                   "the router's certificates, readable by its group only"),
            change(["install", "-d", "-m", "0770", router.RUN_DIR],
                   "where the router's Runtime API socket lives (never published)")]


def first_files(snap: Snapshot) -> Command | None:
    """What a new router needs besides its configuration: a default certificate (the HTTPS
    port answers from the start) and the empty lists the certificate container fills."""
    files: dict[str, bytes] = {}
    if not snap.default_cert:
        files["certs/default.pem"] = default_pem()
    if not snap.router_files:
        files["certs/crt-list"] = b""
        files["tls.map"] = b""
    if not files:
        return None
    return write_files(router.ETC_DIR, files, "the router's default certificate (self-signed) "
                       "and the empty certificate lists", mode=0o644,
                       modes={"certs/default.pem": 0o640},
                       label="<default certificate and empty lists>")


def ensure_router(runner: Runner, settings: ProxyConfig, snap: Snapshot, *,
                  app_network: str | None = None) -> bool:
    """Make sure the router runs and is on ``app_network``. True when it was (re)started."""
    changes: list[Command] = []
    started = False
    on = set(snap.router.networks)
    if not snap.router.exists:
        if networks.ROUTER_NETWORK not in snap.networks:
            changes.append(networks.create(networks.ROUTER_NETWORK))
            snap.networks.add(networks.ROUTER_NETWORK)
        changes += dirs()
        first = first_files(snap)
        if first is not None:
            changes.append(first)
        runner.change_all(changes)
        changes = []
        Writer(runner, settings, snap.who.gid, snap.routes).write_all(
            "write the router's configuration, rebuilt from every app's route")
        if not snap.images.get(settings.router_image):
            changes.append(engine.pull(settings.router_image))
        changes.append(router.run(settings, gid=snap.who.gid))
        on = {networks.ROUTER_NETWORK}
        for route in snap.routes.routes:
            network = networks.app_network(route.app)
            if network != app_network and network in snap.networks:
                changes.append(networks.connect(network, router.NAME))
                on.add(network)
        started = True
    elif not snap.router.running:
        changes.append(router.start())
        started = True
    if app_network and app_network not in on:
        changes.append(networks.connect(app_network, router.NAME))
    runner.change_all(changes)
    if started:
        wait_until_ready(runner)
    return started


def wait_until_ready(runner: Runner, timeout: float = READY_TIMEOUT) -> None:
    """Wait for the Runtime API to answer (the router has loaded its configuration)."""
    last = [""]

    def answers() -> bool | None:
        try:
            return True if "Pid:" in runner.api(api.show_info()) else None
        except DockyardError as exc:
            last[0] = exc.message
            return None

    def expired() -> NoReturn:
        logs = runner.read_one(fact(["docker", "logs", "--tail=20", "--", router.NAME],
                                    lambda a: (a.out + a.err).split("\n"), "router logs"))
        raise DockyardError("DY040", f"the router did not start within {timeout:g}s "
                            f"({last[0]}); its last log lines follow",
                            [f"  {line}" for line in logs[-8:]])

    runner.wait(Wait("the router's Runtime API answers", answers, timeout, expired,
                     why="the deploy changes the router through this API; if it never "
                     "answers, the router's last log lines are printed", interval=0.3,
                     planned=True))


def recreate_router(runner: Runner, settings: ProxyConfig, snap: Snapshot) -> None:
    """A new router container with new ports or image (router apply): the files first, then
    remove and run again, on every app network; the certificate container follows."""
    Writer(runner, settings, snap.who.gid, snap.routes).write_all(
        "write the router's configuration with the new settings")
    changes: list[Command] = []
    if networks.ROUTER_NETWORK not in snap.networks:
        changes.append(networks.create(networks.ROUTER_NETWORK))
        snap.networks.add(networks.ROUTER_NETWORK)
    if not snap.images.get(settings.router_image):
        changes.append(engine.pull(settings.router_image))
    changes += [router.remove(), router.run(settings, gid=snap.who.gid)]
    for route in snap.routes.routes:
        if networks.app_network(route.app) in snap.networks:
            changes.append(networks.connect(networks.app_network(route.app), router.NAME))
    if networks.LEGACY_ROUTER_NETWORK in snap.networks:
        changes.append(networks.remove(networks.LEGACY_ROUTER_NETWORK))
        snap.networks.discard(networks.LEGACY_ROUTER_NETWORK)
    runner.change_all(changes)
    wait_until_ready(runner)
