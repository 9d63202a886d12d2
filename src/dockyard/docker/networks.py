"""Docker networks: one per app (its containers and accessories), plus ``dockyard`` for the
router itself. Builders only."""

from __future__ import annotations

from dockyard.host.command import Command, change, query

ROUTER_NETWORK = "dockyard"


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
