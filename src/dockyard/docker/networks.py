"""Docker networks: one per app (its containers and accessories, named after the app), plus
``Dockyard`` for the router itself. Builders only.

Why a capital D: a container on several networks gets its published ports through the one
Docker picks as its gateway, and Docker picks the network whose name sorts first. App names
are lowercase, so ``Dockyard`` sorts before every app's network, and the router's ports stay
where they are when an app's network comes (first deploy) or goes (remove). With the old
name, ``dockyard``, an app named ``blog`` took the ports over on its first deploy: Docker
moved them (its port proxy restarted), refusing new connections for a moment and cutting
those it proxied."""

from __future__ import annotations

from dockyard.host.command import Command, Fact, change, fact, query

ROUTER_NETWORK = "Dockyard"
#: The router's network in earlier versions: ``router apply`` moves a router still on it.
LEGACY_ROUTER_NETWORK = "dockyard"


def app_network(app: str) -> str:
    return app


def exists(name: str) -> Command:
    return query(["docker", "network", "inspect", "--format={{.Name}}", "--", name],
                 f"does the {name} network exist?")


def create(name: str, *, app: str | None = None) -> Command:
    label = f"dockyard.app={app}" if app else "dockyard.role=network"
    why = (f"create the {name} network: {app}'s containers reach each other by name, and "
           "other apps cannot reach them" if app else
           "create the router's own network, so it can always resolve its own name")
    return change(["docker", "network", "create", f"--label={label}", "--", name], why)


def connect(network: str, container: str) -> Command:
    return change(["docker", "network", "connect", "--", network, container],
                  f"connect {container} to {network} (no restart needed)")


def disconnect(network: str, container: str) -> Command:
    return change(["docker", "network", "disconnect", "--", network, container],
                  f"disconnect {container} from {network}")


def remove(name: str) -> Command:
    return change(["docker", "network", "rm", "--", name], f"remove the {name} network")


def create_overlay(name: str, *, app: str) -> Command:
    """A cluster app's network: an overlay across the swarm's nodes, attachable so one-off
    containers (the release command, `dockyard run`), accessories and every node's router
    join it with a plain ``docker run``/``network connect``."""
    return change(["docker", "network", "create", "--driver=overlay", "--attachable",
                   f"--label=dockyard.app={app}", "--", name],
                  f"create the {name} overlay network: {app}'s tasks on every node, its "
                  "accessories and the routers reach each other by name")


def driver(name: str) -> Fact[str]:
    return fact(["docker", "network", "inspect", "--format={{.Driver}}", "--", name],
                lambda a: a.out.strip() if a.ok else "", f"what kind of network {name} is")
