"""Removing an app: its router entries, containers, images, network and state.

Volumes (accessory data) and backups stay unless asked for: data is never removed by
default. The router keeps running for the other apps and is not reloaded: the app's names
leave it at once (no more routing, no more HTTPS redirect, no more renewals), and only what
carries the app's label is removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.certs import acme
from dockyard.config.model import Config
from dockyard.docker import networks
from dockyard.host.command import Command, Fact, change, fact
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import container as router
from dockyard.state import paths

from .progress import Progress
from .rollout import RouterView
from .target import locked


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


def remove_app(runner: Runner, config: Config, progress: Progress, *,
               volumes_too: bool) -> Removed:
    app = config.app.name
    out = Removed()
    with locked(runner, config, progress, "remove") as t:
        tags, vols = runner.read(images(app), volumes(app))
        route = t.route
        if route is not None:
            view = RouterView.read(t, route.backend)
            park: list[api.ApiCall] = []
            for server in view.stats:
                if not view.stats[server].maint:
                    park.append(api.set_server_state(route.backend, server, "drain"))
                park += api.park_server(route.backend, server, named=view.named(server))
            then: list[Command] = [acme.sync()] if t.snap.certs is not None else []
            t.writer().commit(app, None, why=f"take {app} out of the router's files "
                              f"({route.backend} is free again)", after=park, then=then)
            out.done.append(f"removed from the router ({route.backend} is free again; its "
                            "names are no longer routed or redirected)")
        changes: list[Command] = []
        names = sorted({c.name for c in t.snap.containers})
        if names:
            changes.append(change(["docker", "rm", "-f", "--", *names],
                                  f"remove {app}'s containers (those labelled "
                                  f"dockyard.app={app}: nothing else)"))
            out.done.append(f"removed {len(names)} container(s)")
        if tags:
            changes.append(change(["docker", "image", "rm", "--", *tags],
                                  f"remove {app}'s release images (their tags; images that "
                                  "have other names stay)"))
            out.done.append(f"removed {len(tags)} release image tag(s)")
        network = networks.app_network(app)
        if network in t.snap.networks:
            if network in t.snap.router.networks:
                changes.append(networks.disconnect(network, router.NAME))
            changes.append(networks.remove(network))
            out.done.append(f"removed the {network} network")
        if vols and volumes_too:
            changes.append(change(["docker", "volume", "rm", "--", *vols],
                                  "remove its volumes: their data is gone after this"))
            out.done.append(f"removed {len(vols)} volume(s)")
        elif vols:
            out.kept.append(f"{len(vols)} volume(s) with the accessories' data "
                            f"({', '.join(vols)}): dockyard remove --volumes deletes them")
        changes.append(change(["rm", "-rf", "--", paths.app_dir(app)],
                              f"remove {app}'s releases, env files and routing state"))
        runner.change_all(changes, check=False)
        runner.flush_audit()
    return out
