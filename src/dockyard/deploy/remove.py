"""Removing an app: its router entries, containers, images, network and state.

Volumes (accessory data), backups and certificates stay unless asked for (``--volumes``,
``--backups``, ``--certificates``): data is never removed by default, and what stays is
said at the end with the option that deletes it. The question before anything is removed
names what cannot be undone. The router keeps running for the other apps and is not
reloaded: the app's names leave it at once (no more routing, no more HTTPS redirect, no more
renewals), and only what carries the app's label is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

from dockyard.certs import acme
from dockyard.certs.ensure import ensure_certs
from dockyard.config.model import Config
from dockyard.docker import networks
from dockyard.errors import DockyardError
from dockyard.host.command import Command, Fact, change, fact
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import container as router
from dockyard.scripts import inline
from dockyard.state import paths

from . import routed
from .progress import Progress
from .rollout import RouterView
from .target import Target, locked


@dataclass
class Removed:
    done: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def images(app: str) -> Fact[list[str]]:
    return fact(["docker", "image", "ls", "--format={{.Repository}}:{{.Tag}}", "--",
                 f"dockyard/{app}"], lambda a: sorted(set(a.out.split())),
                "the app's release images")


def volumes(app: str) -> Fact[list[str]]:
    return fact(["docker", "volume", "ls", "-q", f"--filter=label=dockyard.app={app}"],
                lambda a: sorted(a.out.split()), "the app's volumes")


@dataclass
class Kept:
    """What stays on the server after a remove unless asked for."""
    backups: int = 0
    certificates: list[str] = field(default_factory=list)


def parse_kept(text: str) -> Kept:
    kept = Kept()
    for line in text.split("\n"):
        word, _, value = line.partition(" ")
        if word == "backups" and value.isdigit():
            kept.backups = int(value)
        elif word == "cert" and value:
            kept.certificates.append(value)
    return kept


def kept(app: str, names: list[str]) -> Fact[Kept]:
    return fact(inline("kept", app, *names), lambda a: parse_kept(a.out),
                "the app's backups and the certificates of its names on disk")


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


#: Called with what the remove will delete for good, before anything is changed.
Confirm = Callable[[list[str]], None]


def remove_app(runner: Runner, config: Config, progress: Progress, *,
               volumes_too: bool, backups_too: bool = False, certificates_too: bool = False,
               confirm: Confirm | None = None) -> Removed:
    app = config.app.name
    out = Removed()
    with locked(runner, config, progress, "remove") as t:
        route = t.route
        names = sorted({*config.web.domains, *(route.domains if route else [])})
        tags, vols, left = runner.read(images(app), volumes(app), kept(app, names))
        gone = [f"{app}'s containers, release images and routes"]
        if t.snap.env:
            gone.append(f"the environment values set on the server "
                        f"({', '.join(sorted(t.snap.env))})")
        if vols and volumes_too:
            gone.append(f"{_count(len(vols), 'volume')} with the accessories' data "
                        f"({', '.join(vols)})")
        if left.backups and backups_too:
            gone.append(f"{_count(left.backups, 'backup')} in {paths.BACKUPS}/{app}")
        if left.certificates and certificates_too:
            gone.append(f"the certificates of {', '.join(left.certificates)}")
        if confirm is not None:
            confirm(gone)
        if t.cluster:
            _remove_services(t)
            out.done.append("removed its services and environment secrets from the swarm")
            for node in t.nodes:
                _unroute(node)
                _remove_from_node(node)
        if _unroute(t):
            out.done.append(f"removed from the router ({route.backend if route else ''} is "
                            "free again; its names are no longer routed or redirected)")
        for part in [r for r in t.snap.routes.routes if routed.is_part(app, r.app)]:
            routed.unroute(t, part, f"take {part.app} out of the router's files")
            out.done.append(f"removed {part.app} from the router ({part.backend} is free "
                            "again)")
        changes: list[Command] = []
        containers = sorted({c.name for c in t.snap.containers})
        if containers:
            changes.append(change(["docker", "rm", "-f", "--", *containers],
                                  f"remove {app}'s containers (those labelled "
                                  f"dockyard.app={app}: nothing else)"))
            out.done.append(f"removed {_count(len(containers), 'container')}")
        if tags:
            changes.append(change(["docker", "image", "rm", "--", *tags],
                                  f"remove {app}'s release images (their tags; images that "
                                  "have other names stay)"))
            out.done.append(f"removed {_count(len(tags), 'release image tag')}")
        network = networks.app_network(app)
        if network in t.snap.networks:
            if network in t.snap.router.networks:
                changes.append(networks.disconnect(network, router.NAME))
            changes.append(networks.remove(network))
            out.done.append(f"removed the {network} network")
        if vols and volumes_too:
            changes.append(change(["docker", "volume", "rm", "--", *vols],
                                  "remove its volumes: their data is gone after this"))
            out.done.append(f"removed {_count(len(vols), 'volume')}")
        elif vols:
            out.kept.append(f"{_count(len(vols), 'volume')} with the accessories' data "
                            f"({', '.join(vols)}): dockyard remove --volumes deletes them")
        backups_dir = f"{paths.BACKUPS}/{app}"
        if left.backups and backups_too:
            changes.append(change(["rm", "-rf", "--", backups_dir],
                                  f"delete {app}'s backups: they cannot be restored after this"))
            out.done.append(f"removed {_count(left.backups, 'backup')} ({backups_dir})")
        elif left.backups:
            out.kept.append(f"{_count(left.backups, 'backup')} in {backups_dir}: "
                            "dockyard remove --backups deletes them")
        changes.append(change(["rm", "-rf", "--", paths.app_dir(app)],
                              f"remove {app}'s releases, env files and routing state"))
        runner.change_all(changes, check=False)
        if left.certificates and certificates_too:
            _forget(t, left.certificates)
            out.done.append(f"removed the certificates of {', '.join(left.certificates)}")
        elif left.certificates:
            out.kept.append(f"the certificates of {', '.join(left.certificates)} (no longer "
                            "served; a new deploy of these names needs no new order): "
                            "dockyard remove --certificates deletes them")
        runner.flush_audit()
    return out


def _forget(t: Target, names: list[str]) -> None:
    """The certificate container deletes them (it is their only writer), running this
    version's script; without the container, nothing else writes them: plain rm."""
    runner = t.runner
    if t.snap.certs is not None:
        ensure_certs(runner, t.settings, gid=t.snap.who.gid, current=t.snap.certs,
                     image_present=True)
        runner.change(acme.forget(names))
        return
    files = [f"{router.ETC_DIR}/certs/{n}.pem" for n in names]
    files += [f"{acme.CERTS_DIR}/lego/certificates/{n}.{ext}" for n in names
              for ext in ("pem", "crt", "key", "issuer.crt", "json")]
    runner.change(change(["rm", "-f", "--", *files],
                         "delete the certificates of these names (no certificate container "
                         "runs to do it)"))


def _unroute(t: Target) -> bool:
    """The app's slot emptied and freed in this host's router; False when it had none."""
    route, app = t.route, t.app
    if route is None:
        return False
    view = RouterView.read(t, route.backend)
    park: list[api.ApiCall] = []
    for server in view.stats:
        if not view.stats[server].maint:
            park.append(api.set_server_state(route.backend, server, "drain"))
        park += api.park_server(route.backend, server, named=view.named(server))
    then: list[Command] = [acme.sync()] if t.snap.certs is not None else []
    t.writer().commit(app, None, why=f"take {app} out of the router's files "
                      f"({route.backend} is free again)", after=park, then=then)
    return True


def _remove_services(t: Target) -> None:
    """A cluster: the app's services and secrets go first (through the first host, a
    manager), then the wait until their tasks stopped on every node."""
    from dockyard.cluster import services as svc
    from dockyard.host.command import Wait

    runner, app = t.runner, t.app
    found, secrets = runner.read(svc.app_services(app), svc.app_secrets(app))
    changes = []
    if found:
        changes.append(svc.remove([s.name for s in found]))
    if secrets:
        changes.append(svc.remove_secrets(secrets))
    runner.change_all(changes, check=False)
    limit = t.config.deploy.stop_timeout + 15

    def stopped() -> bool | None:
        for node in t.everywhere:
            left = node.runner.read_one(fact(
                ["docker", "ps", "-q", f"--filter=label=dockyard.app={app}",
                 "--filter=label=com.docker.swarm.service.name"],
                lambda a: a.out.split(), "the app's task containers still here"))
            if left:
                return None
        return True

    def late() -> NoReturn:
        raise DockyardError("DY085", f"{app}'s tasks did not stop within {limit:g}s; run "
                            "dockyard remove again")

    runner.wait(Wait("every task of the app stopped", stopped, limit, late, interval=0.5,
                     planned=True))


def _remove_from_node(t: Target) -> None:
    """Another node of a cluster: its release images, its router off the app's network,
    the app's routing state."""
    app, runner = t.app, t.runner
    tags = runner.read_one(images(app))
    changes: list[Command] = []
    if tags:
        changes.append(change(["docker", "image", "rm", "--", *tags],
                              f"remove {app}'s release images on this node"))
    network = networks.app_network(app)
    if network in t.snap.router.networks:
        changes.append(networks.disconnect(network, router.NAME))
    changes.append(change(["rm", "-rf", "--", paths.app_dir(app)],
                          f"remove {app}'s routing state on this node"))
    runner.change_all(changes, check=False)
    runner.flush_audit()
