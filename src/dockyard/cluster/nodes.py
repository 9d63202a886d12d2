"""`dockyard cluster init|status|drain|activate|remove|leave`: the swarm's membership, from
the [server] hosts list. Each host is reached over its own SSH connection (a Runner); the
swarm is changed through its managers.

``init`` is idempotent: a host already in the swarm is left alone, the first host starts
it when nobody has, the others join (managers up to three, in the order of ``hosts``;
workers beyond) and every node is labelled with its ``hosts`` entry, so a command names a
node the way the file does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from dockyard.config.model import Config
from dockyard.errors import DockyardError
from dockyard.host.command import Fact, Wait, fact
from dockyard.host.runner import Runner
from dockyard.host.spec import HostSpec
from dockyard.router import api

from . import services as svc
from . import swarm


def runners(runner: Runner) -> list[Runner]:
    """The primary first, then the other hosts, in the order of [server] hosts."""
    return [runner, *runner.peers]


def entry_of(config: Config, name: str) -> str:
    """A hosts entry named as written or by its address (DY080 when it is neither)."""
    hosts = config.server.all_hosts
    for host in hosts:
        if name == host or name == HostSpec.parse(host).hostname:
            return host
    raise DockyardError("DY080", f"{name!r} is not one of [server] hosts ({', '.join(hosts)}); "
                        "name a host as written there or by its address")


@dataclass
class Member:
    """A hosts entry and what its host says about the swarm."""

    host: str
    runner: Runner
    seen: swarm.Membership


def members(config: Config, runner: Runner) -> list[Member]:
    """Every host's membership: one round trip per host."""
    out = []
    for host, r in zip(config.server.all_hosts, runners(runner), strict=True):
        out.append(Member(host, r, r.read_one(swarm.membership())))
    return out


def _manager(found: Sequence[Member]) -> Member | None:
    return next((m for m in found if m.seen.active and m.seen.manager), None)


def init(config: Config, runner: Runner, say: Callable[[str], None]) -> list[swarm.Node]:
    """Make every hosts entry a node of one swarm (see the module's docstring)."""
    if not config.server.cluster:
        raise DockyardError("DY081", "cluster init needs several servers: list them in "
                            '[server] hosts = ["ssh://root@a", "ssh://root@b"]')
    found = members(config, runner)
    clusters = {m.seen.cluster_id for m in found if m.seen.active and m.seen.cluster_id}
    if len(clusters) > 1:
        raise DockyardError("DY082", "these hosts are in different swarms already: "
                            + ", ".join(f"{m.host} ({m.seen.cluster_id[:12]})" for m in found
                                        if m.seen.cluster_id) + "; make one leave first "
                            "(docker swarm leave on it)")
    for m in found:
        if m.seen.state in ("pending", "error", "locked"):
            raise DockyardError("DY082", f"{m.host} is in swarm state {m.seen.state!r}; fix "
                                "it there (docker info), then run cluster init again")
        if m.seen.active and not m.seen.manager and not clusters:
            raise DockyardError("DY082", f"{m.host} is a worker of a swarm none of the other "
                                "hosts manages; make it leave first (docker swarm leave)")
    lead = _manager(found)
    if lead is None:
        first = found[0]
        addr = first.seen.ssh_addr or HostSpec.parse(first.host).hostname
        first.runner.change(swarm.init(addr))
        say(f"{first.host}: started the swarm (advertised on {addr})")
        first.seen = first.runner.read_one(swarm.membership())
        lead = first
        if runner.dry_run:
            lead.seen = swarm.Membership("active", "<node id>", True, "<swarm>", addr, addr)
    managers = sum(1 for m in found if m.seen.active and m.seen.manager)
    tokens: dict[str, str] = {}
    for m in found:
        if m.seen.active:
            continue
        role = "manager" if managers < swarm.MAX_MANAGERS else "worker"
        if role not in tokens:
            tokens[role] = lead.runner.read_one(swarm.join_token(role)) or "<token>"
            lead.runner.add_secrets([tokens[role]])
            m.runner.add_secrets([tokens[role]])
        addr = m.seen.ssh_addr or HostSpec.parse(m.host).hostname
        m.runner.change(swarm.join(tokens[role], lead.seen.node_addr, addr, role))
        say(f"{m.host}: joined as a {role} (advertised on {addr})")
        managers += role == "manager"
        m.seen = m.runner.read_one(swarm.membership())
    nodes = lead.runner.read_one(swarm.nodes())
    by_id = {n.id: n for n in nodes}
    labels = [swarm.label(m.seen.node_id, m.host) for m in found
              if m.seen.node_id and (n := by_id.get(m.seen.node_id)) is not None
              and n.host != m.host]
    lead.runner.change_all(labels)
    return lead.runner.read_one(swarm.nodes()) if labels else nodes


def manager(config: Config, runner: Runner) -> Runner:
    """A runner on a reachable manager, the first in hosts order (DY083 when none is)."""
    for r in runners(runner):
        try:
            seen = r.read_one(swarm.membership())
        except DockyardError:
            continue  # unreachable: the next one
        if seen.active and seen.manager:
            return r
    raise DockyardError("DY083", "no host of [server] hosts is a reachable swarm manager; "
                        "run: dockyard cluster init")


@dataclass(frozen=True)
class Task:
    """A running task of one of Dockyard's services."""

    service: str
    node: str
    state: str
    app: str


def _tasks(text: str) -> list[Task]:
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) == 4:
            out.append(Task(*parts))
    return out


def tasks() -> Fact[list[Task]]:
    """Every task of every Dockyard service that should run: service, node id, state."""
    return fact(["sh", "-c", 'for s in $(docker service ls -q --filter label=dockyard.app); do '
                 'app=$(docker service inspect -f \'{{index .Spec.Labels "dockyard.app"}}\' '
                 '"$s"); docker service ps -q --filter desired-state=running "$s" | '
                 'xargs -r docker inspect -f "{{.ServiceID}}\t{{.NodeID}}\t{{.Status.State}}\t'
                 '$app" ; done'], lambda a: _tasks(a.out) if a.ok else [],
                "which tasks of Dockyard's services run on which node")


def status(config: Config, runner: Runner) -> tuple[list[swarm.Node], list[Task]]:
    """The nodes and tasks; while the managers elect a leader (a manager was lost) they
    answer nothing for a few seconds: asked again for up to 20 s."""
    lead = manager(config, runner)
    clock = lead.host.clock
    deadline = clock.now() + 20
    while True:
        nodes, running = lead.read(swarm.nodes(), tasks())
        if nodes or clock.now() > deadline:
            break
        clock.sleep(1)
    if not nodes:
        raise DockyardError("DY083", f"the swarm's managers did not answer on {lead.host.label} "
                            "(no leader: more than half of the managers are unreachable?); "
                            "see docs/cluster.md")
    return nodes, running


def node_of(config: Config, runner: Runner, name: str) -> tuple[Runner, swarm.Node]:
    host = entry_of(config, name)
    lead = manager(config, runner)
    addr = HostSpec.parse(host).hostname
    for n in lead.read_one(swarm.nodes()):
        if n.host == host or n.addr == addr:
            return lead, n
    raise DockyardError("DY084", f"{host} is not a node of the swarm; run: dockyard cluster "
                        "init")


def wait_tasks_away(lead: Runner, node: swarm.Node, timeout: float = 120) -> None:
    """Until no task of Dockyard's services runs on ``node`` any more."""

    def away() -> bool | None:
        left = [t for t in lead.read_one(tasks()) if t.node == node.id
                and t.state in ("running", "starting", "preparing", "assigned")]
        return True if not left else None

    def expired() -> NoReturn:
        raise DockyardError("DY085", f"tasks still run on {node.host or node.hostname} after "
                            f"{timeout:g}s; see: dockyard cluster status")

    lead.wait(Wait(f"no task left on {node.host or node.hostname}", away, timeout, expired,
                   interval=1.0, planned=True,
                   why="Swarm starts each task elsewhere, then stops the one on this node"))


# -- moving tasks off a node with no failed request ------------------------------------------

def _router_slots(r: Runner, addresses: set[str]) -> list[tuple[str, str]]:
    """(backend, server) of this host's router slots that point at one of ``addresses``."""
    try:
        text = r.api(api.show_all_servers_state())
    except DockyardError:
        return []  # no router on this host
    return [(s.backend, s.server) for s in api.parse_servers_state(text)
            if s.address in addresses and s.backend.startswith("slot")]


def drain(config: Config, runner: Runner, name: str, say: Callable[[str], None],
          timeout: float = 60.0) -> swarm.Node:
    """Every router stops sending new requests to the node's tasks and waits for those in
    flight; then Swarm moves the tasks (it starts them elsewhere); the routers' slots follow
    the tasks through Docker's DNS and take requests again once the new tasks are there."""
    lead, node = node_of(config, runner, name)
    found: list[str] = lead.read_one(svc.task_addresses(node.id, ""))
    addresses = set(found)
    slots = {id(r): _router_slots(r, addresses) for r in runners(runner)}
    for r in runners(runner):
        for backend, server in slots[id(r)]:
            r.api(api.set_server_state(backend, server, "drain"))
    say(f"{node.host or node.hostname}: its {len(addresses)} tasks drained on every router")

    def idle() -> bool | None:
        for r in runners(runner):
            mine = slots[id(r)]
            if not mine:
                continue
            stats = api.parse_stat(r.api(api.show_stat()))
            if any((st := stats.get(key)) is not None and st.sessions for key in mine):
                return None
        return True

    def gave_up() -> NoReturn:
        raise _Late

    with contextlib.suppress(_Late):
        lead.wait(Wait("no request in flight to the node's tasks", idle, timeout, gave_up,
                       interval=0.25, planned=True))
    lead.change(swarm.availability(node.id, "drain"))
    wait_tasks_away(lead, node)

    def moved() -> bool | None:
        for r in runners(runner):
            mine = slots[id(r)]
            if not mine:
                continue
            states = {(s.backend, s.server): s for s in api.parse_servers_state(
                r.api(api.show_all_servers_state()))}
            if any((st := states.get(key)) is not None and st.address in addresses
                   for key in mine):
                return None
        return True

    with contextlib.suppress(_Late):
        lead.wait(Wait("every drained slot follows its task to another node", moved, timeout,
                       gave_up, interval=0.5, planned=True,
                       why="Docker's DNS gives each slot the task that replaced its own"))
    for r in runners(runner):
        for backend, server in slots[id(r)]:
            r.api(api.set_server_state(backend, server, "ready"))
    return node


class _Late(Exception):
    """A wait ran out: the drain goes on (requests still in flight finish or time out)."""


def activate(config: Config, runner: Runner, name: str) -> swarm.Node:
    lead, node = node_of(config, runner, name)
    lead.change(swarm.availability(node.id, "active"))
    return node


def remove(config: Config, runner: Runner, name: str, say: Callable[[str], None]) -> None:
    """Drain the node (no failed request), then it leaves and the swarm forgets it."""
    host = entry_of(config, name)
    if host == config.server.all_hosts[0]:
        raise DockyardError("DY087", f"{host} is the first of [server] hosts (it keeps the "
                            "app's records); move another host first in the list, then remove "
                            "this one")
    node = drain(config, runner, name, say)
    lead = manager(config, runner)
    if node.role == "manager":
        lead.change(swarm.demote(node.id))
    peer = runners(runner)[config.server.all_hosts.index(host)]
    with contextlib.suppress(DockyardError):
        peer.change(swarm.leave(force=False))
    lead.change(swarm.remove(node.id))


def leave(config: Config, runner: Runner, say: Callable[[str], None]) -> None:
    """Back to one server: refused while Dockyard apps run on the swarm (remove them or
    deploy them to one host first); then the other hosts leave, the first last."""
    lead = manager(config, runner)
    running = lead.read_one(tasks())
    apps = sorted({t.app for t in running})
    if apps:
        raise DockyardError("DY088", f"apps still run on the swarm ({', '.join(apps)}); remove "
                            "them first (dockyard remove), then leave and deploy to one host")
    everyone = runners(runner)
    for r in reversed(everyone):
        seen = r.read_one(swarm.membership())
        if seen.active:
            r.change(swarm.leave(force=True))
            say(f"{r.host.label}: left the swarm")
