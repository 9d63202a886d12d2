"""`dockyard cluster init|status|drain|activate|remove|leave`: the servers of [server] hosts
as one Docker Swarm (docs/cluster.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard.cli.context import get, group
from dockyard.cli.tables import Column, fitted
from dockyard.cluster import nodes as cluster

app = group("Run the app on several servers ([server] hosts) through Docker Swarm.")

HostArg = Annotated[str, typer.Argument(
    metavar="HOST", help='A [server] hosts entry as written ("ssh://root@a") or its address.')]


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Make every [server] hosts entry a node of one swarm: the first starts it, the others
    join (managers up to three, workers beyond), each labelled with its entry. Safe to run
    again (after adding a host, for instance)."""
    obj = get(ctx)
    found = cluster.init(obj.config(), obj.runner(), obj.say)
    if obj.dry_run:
        return
    if obj.json:
        obj.emit_json([_node_json(n, 0) for n in found])
        return
    obj.say(f"the swarm has {len(found)} nodes: " + ", ".join(
        f"{n.host or n.hostname} ({n.role})" for n in found))


def _node_json(n: object, tasks: int) -> dict[str, object]:
    from dockyard.cluster.swarm import Node

    assert isinstance(n, Node)
    return {"host": n.host, "hostname": n.hostname, "id": n.id, "role": n.role,
            "leader": n.leader, "state": n.state, "availability": n.availability,
            "address": n.addr, "tasks": tasks}


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Each node: role, state (ready/down), availability, and how many of Dockyard's tasks
    run there."""
    obj = get(ctx)
    found, running = cluster.status(obj.config(), obj.runner())
    per_node = {n.id: sum(1 for t in running if t.node == n.id) for n in found}
    if obj.json:
        obj.emit_json({"nodes": [_node_json(n, per_node[n.id]) for n in found],
                       "tasks": [{"service": t.service, "node": t.node, "state": t.state,
                                  "app": t.app} for t in running]})
        return
    obj.console.print(fitted(
        [Column("host", key=True), Column("node", drop=1), Column("role", key=True),
         Column("state", key=True), Column("availability", key=True), Column("tasks", key=True)],
        [[n.host or "-", n.hostname, "leader" if n.leader else n.role, n.state,
          n.availability, str(per_node[n.id])] for n in found],
        width=obj.console.width, title="cluster"))


@app.command("drain")
def drain(ctx: typer.Context, host: HostArg) -> None:
    """Move every task off HOST with no failed request: the routers stop sending it new
    requests and wait for those in flight, then Swarm starts its tasks elsewhere."""
    obj = get(ctx)
    node = cluster.drain(obj.config(), obj.runner(), host, obj.say)
    obj.say(f"{node.host or node.hostname} is drained: no task runs there (dockyard cluster "
            "activate to use it again)")


@app.command("activate")
def activate(ctx: typer.Context, host: HostArg) -> None:
    """Let Swarm place tasks on HOST again (new deploys spread onto it)."""
    obj = get(ctx)
    node = cluster.activate(obj.config(), obj.runner(), host)
    obj.say(f"{node.host or node.hostname} takes tasks again")


@app.command("remove")
def remove(ctx: typer.Context, host: HostArg) -> None:
    """Drain HOST, then it leaves the swarm and the swarm forgets it; remove it from
    [server] hosts afterwards."""
    obj = get(ctx)
    cluster.remove(obj.config(), obj.runner(), host, obj.say)
    obj.say(f"{host} left the cluster; remove it from [server] hosts")


@app.command("leave")
def leave(ctx: typer.Context) -> None:
    """Back to one server: every host leaves the swarm (refused while apps run on it)."""
    obj = get(ctx)
    cluster.leave(obj.config(), obj.runner(), obj.say)
    obj.say('the swarm is gone; write host = "..." (one server) in [server] and deploy')
