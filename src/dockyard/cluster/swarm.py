"""Docker Swarm as Dockyard reads and changes it: facts about a host's membership and the
swarm's nodes, and the commands that init, join, label, drain and leave. Builders only.

Why Swarm and not a loop over hosts: it is in every Docker install, keeps the app's tasks
running when a node dies (it reschedules them), and gives each app an overlay network its
tasks and the routers share. Its virtual IPs and routing mesh are not used (connections are
dropped during updates: moby #30321, #35082): services use DNS round-robin endpoints and
every node's router finds the tasks through Docker's DNS (``tasks.<service>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from dockyard import scripts
from dockyard.host.command import Answer, Command, Fact, change, fact

#: The node label that ties a swarm node to its [server] hosts entry.
HOST_LABEL = "dockyard.host"
#: Raft is happiest with an odd number of managers; three survive the loss of one.
MAX_MANAGERS = 3
SWARM_PORT = 2377


@dataclass(frozen=True)
class Membership:
    """One host's view of the swarm (``docker info``)."""

    state: str  # inactive, pending, active, error, locked
    node_id: str = ""
    manager: bool = False
    cluster_id: str = ""
    node_addr: str = ""
    #: the address this SSH connection reached the host on: what the swarm advertises
    ssh_addr: str = ""

    @property
    def active(self) -> bool:
        return self.state == "active"


def _membership(a: Answer) -> Membership:
    lines = a.out.strip().split("\n")
    try:
        data = json.loads(lines[0]) if a.ok and lines and lines[0] else {}
    except ValueError:
        data = {}
    conn = lines[1].split() if len(lines) > 1 else []
    cluster = data.get("Cluster") or {}
    return Membership(state=str(data.get("LocalNodeState") or "inactive"),
                      node_id=str(data.get("NodeID") or ""),
                      manager=bool(data.get("ControlAvailable")),
                      cluster_id=str(cluster.get("ID") or ""),
                      node_addr=str(data.get("NodeAddr") or ""),
                      ssh_addr=conn[2] if len(conn) > 2 else "")


def membership() -> Fact[Membership]:
    return fact(["sh", "-c", 'docker info --format "{{json .Swarm}}"; '
                 'echo "${SSH_CONNECTION:-}"'], _membership,
                "is this host in a swarm, as a manager? (and its address as SSH reached it)")


@dataclass(frozen=True)
class Node:
    id: str
    hostname: str
    role: str  # manager, worker
    state: str  # ready, down, unknown
    availability: str  # active, pause, drain
    addr: str
    leader: bool = False
    reachability: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        """Its [server] hosts entry (the label `cluster init` set), or ""."""
        return self.labels.get(HOST_LABEL, "")


def _nodes(a: Answer) -> list[Node]:
    if not a.ok or not a.out.strip():
        return []
    try:
        data = json.loads(a.out)
    except ValueError:
        return []
    out = []
    for n in data:
        spec, status = n.get("Spec") or {}, n.get("Status") or {}
        manager = n.get("ManagerStatus") or {}
        out.append(Node(id=n.get("ID", ""), hostname=(n.get("Description") or {}).get(
            "Hostname", ""), role=spec.get("Role", ""), state=status.get("State", ""),
            availability=spec.get("Availability", ""), addr=status.get("Addr", ""),
            leader=bool(manager.get("Leader")), reachability=manager.get("Reachability", ""),
            labels=dict(spec.get("Labels") or {})))
    return out


def nodes() -> Fact[list[Node]]:
    """Every node, with its labels (a manager only)."""
    return fact(["sh", "-c", 'ids=$(docker node ls -q) && docker node inspect $ids'], _nodes,
                "the swarm's nodes, their roles, states and labels")


def init(addr: str) -> Command:
    return change(["docker", "swarm", "init", f"--advertise-addr={addr}",
                   f"--listen-addr={addr}:{SWARM_PORT}"],
                  f"start a swarm on this host, advertised on {addr} (the address SSH "
                  "reached it on)", if_fails="nothing else changed; see the message")


def join_token(role: str) -> Fact[str]:
    return fact(["docker", "swarm", "join-token", "-q", "--", role],
                lambda a: a.out.strip() if a.ok else "",
                f"the token a host needs to join as a {role} (a secret: never printed)")


def join(token: str, manager_addr: str, addr: str, role: str) -> Command:
    """The token travels on stdin (scripts/swarm-join.sh), not in this command's argv."""
    return change(scripts.argv("swarm-join", f"{manager_addr}:{SWARM_PORT}", addr),
                  f"join the swarm as a {role}, advertised on {addr}",
                  stdin=token.encode() + b"\n", stdin_label="<join token>",
                  if_fails="this host is not in the swarm; run cluster init again")


def label(node_id: str, host: str) -> Command:
    return change(["docker", "node", "update", f"--label-add={HOST_LABEL}={host}", "--",
                   node_id], f"label the node with its [server] hosts entry ({host})")


def availability(node_id: str, value: str) -> Command:
    return change(["docker", "node", "update", f"--availability={value}", "--", node_id],
                  f"set the node's availability to {value}")


def demote(node_id: str) -> Command:
    return change(["docker", "node", "demote", "--", node_id],
                  "make it a worker first (a manager cannot be removed)")


def remove(node_id: str) -> Command:
    return change(["docker", "node", "rm", "--force", "--", node_id],
                  "forget the node in the swarm")


def leave(force: bool = False) -> Command:
    argv = ["docker", "swarm", "leave"] + (["--force"] if force else [])
    return change(argv, "this host leaves the swarm (its containers outside it keep running)")
