"""Bringing the router to the state Dockyard's files describe, without restarting it.

``ensure_router`` creates the router when it is missing (first deploy), starts it when it is
stopped, and connects it to an app's network when it is not on it yet. None of this reloads a
running router. ``router apply`` either hands over to a new HAProxy (``hand_over``: a new
image or configuration, no request lost) or recreates both containers (``recreate_router``:
new ports, or a router of the earlier one-container layout or network; about a second of
outage, said before it happens). See router/container.py for the layout.
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
    info = snap.router
    on = set(info.networks)
    if not info.exists:
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
        changes += [router.run_holder(settings), router.run(settings, gid=snap.who.gid)]
        on = {networks.ROUTER_NETWORK}
        for route in snap.routes.routes:
            network = networks.app_network(route.app)
            if network != app_network and network in snap.networks:
                changes.append(networks.connect(network, router.NAME))
                on.add(network)
        started = True
    elif not info.running:
        holder_started = info.legacy or not info.holder_running
        if holder_started:
            changes.append(router.start())
        if not info.legacy:
            if not info.haproxy:
                changes.append(router.run(settings, gid=snap.who.gid))
            else:  # a HAProxy left in a restarted holder's old namespace starts again
                changes.append(router.restart_haproxy() if holder_started and
                               info.haproxy_running else router.start_haproxy())
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
        logs = runner.read_one(fact(["docker", "logs", "--tail=20", "--", router.HAPROXY],
                                    lambda a: (a.out + a.err).split("\n"), "router logs"))
        raise DockyardError("DY040", f"the router did not start within {timeout:g}s "
                            f"({last[0]}); its last log lines follow",
                            [f"  {line}" for line in logs[-8:]])

    runner.wait(Wait("the router's Runtime API answers", answers, timeout, expired,
                     why="the deploy changes the router through this API; if it never "
                     "answers, the router's last log lines are printed", interval=0.3,
                     planned=True))


def recreate_router(runner: Runner, settings: ProxyConfig, snap: Snapshot) -> None:
    """New router containers (router apply: new ports, or a router of the earlier layout or
    network): the files first, then remove and run again, on every app network; the
    certificate container follows."""
    Writer(runner, settings, snap.who.gid, snap.routes).write_all(
        "write the router's configuration with the new settings")
    changes: list[Command] = []
    if networks.ROUTER_NETWORK not in snap.networks:
        changes.append(networks.create(networks.ROUTER_NETWORK))
        snap.networks.add(networks.ROUTER_NETWORK)
    if not snap.images.get(settings.router_image):
        changes.append(engine.pull(settings.router_image))
    changes += [router.remove(), router.run_holder(settings),
                router.run(settings, gid=snap.who.gid)]
    for route in snap.routes.routes:
        if networks.app_network(route.app) in snap.networks:
            changes.append(networks.connect(networks.app_network(route.app), router.NAME))
    if networks.LEGACY_ROUTER_NETWORK in snap.networks:
        changes.append(networks.remove(networks.LEGACY_ROUTER_NETWORK))
        snap.networks.discard(networks.LEGACY_ROUTER_NETWORK)
    runner.change_all(changes)
    wait_until_ready(runner)


def can_hand_over(snap: Snapshot) -> bool:
    """A new HAProxy can take over without a gap: the router has this layout and runs."""
    info = snap.router
    return info.exists and not info.legacy and info.running and not info.on_legacy_network


def hand_over(runner: Runner, settings: ProxyConfig, snap: Snapshot) -> None:
    """A new HAProxy (new image or configuration) replaces the running one with no request
    lost: it starts beside it with its listening sockets, and once it has loaded, the old one
    stops softly and exits; then the new one takes the usual name. If the new one does not
    load, it is removed and the old one keeps serving."""
    Writer(runner, settings, snap.who.gid, snap.routes).write_all(
        "write the router's configuration with the new settings (the new HAProxy reads it)")
    changes: list[Command] = [change(["docker", "rm", "-f", "--", router.NEXT],
                                     "no successor left over from an interrupted upgrade")]
    if not snap.images.get(settings.router_image):
        changes.append(engine.pull(settings.router_image))
    changes.append(router.run(settings, gid=snap.who.gid, name=router.NEXT, take_over=True))
    runner.change_all(changes)
    _wait_loaded(runner)
    runner.change_all(router.retire_old())
    _wait_exited(runner, router.HAPROXY, router.SOFT_STOP_SECONDS)
    runner.change_all(router.promote())
    wait_until_ready(runner)


def _wait_loaded(runner: Runner, timeout: float = READY_TIMEOUT) -> None:
    """Until the new HAProxy says it loaded its configuration (and took the sockets)."""
    def loaded() -> bool | None:
        state = runner.read_one(fact(
            ["sh", "-c", 'docker inspect --format "{{.State.Status}}" -- "$1"; '
             'docker logs --tail=50 -- "$1" 2>&1 | grep -c "Loading success" || true',
             "loaded", router.NEXT], lambda a: a.out.split(), "has the new HAProxy loaded?"))
        if state and state[0] != "running":
            raise DockyardError("DY040", f"the new HAProxy ({router.NEXT}) stopped before it "
                                "loaded; the old one keeps serving; its logs follow",
                                _logs(runner, router.NEXT))
        return True if len(state) > 1 and state[1] != "0" else None

    def expired() -> NoReturn:
        raise DockyardError("DY040", f"the new HAProxy ({router.NEXT}) did not load within "
                            f"{timeout:g}s; the old one keeps serving; its logs follow",
                            _logs(runner, router.NEXT))

    try:
        runner.wait(Wait("the new HAProxy has loaded its configuration", loaded, timeout,
                         expired, interval=0.2, planned=True,
                         why="the old one stops only once the new one listens"))
    except DockyardError:
        runner.change(change(["docker", "rm", "-f", "--", router.NEXT],
                             "remove the new HAProxy that did not load"), check=False)
        raise


def _wait_exited(runner: Runner, name: str, timeout: float) -> None:
    def exited() -> bool | None:
        state = runner.read_one(fact(["docker", "inspect", "--format={{.State.Status}}",
                                      "--", name], lambda a: a.out.strip() if a.ok else "gone",
                                     f"has {name} exited?"))
        return True if state in ("exited", "dead", "gone") else None

    def expired() -> NoReturn:
        raise DockyardError("DY040", f"the old HAProxy ({name}) did not exit within "
                            f"{timeout:g}s of its soft stop; the new one serves; remove it "
                            f"with: docker rm -f {name}, then rename {router.NEXT} to {name}")

    runner.wait(Wait(f"the old HAProxy finished its requests and exited (at most "
                     f"{timeout:g}s)", exited, timeout, expired, interval=0.3, planned=True,
                     why="its connections end on their next answer or at hard-stop-after"))


def _logs(runner: Runner, name: str) -> list[str]:
    lines = runner.read_one(fact(["docker", "logs", "--tail=20", "--", name],
                                 lambda a: (a.out + a.err).split("\n"), f"{name}'s logs"))
    return [f"  {line}" for line in lines[-8:] if line]
