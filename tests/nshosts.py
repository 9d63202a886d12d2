"""The testbed's namespace hosts (testbed/hosts) as tests and bench/ship use them: their
addresses, a wipe of what Dockyard made there, the bytes on their links, and what the local
builder pushed into this machine's registry."""

from __future__ import annotations

import contextlib
import fcntl
import json
import shlex
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HOSTS_ENV = Path("/var/lib/dockyard-testbed/hosts.env")
#: Taken by every test that changes the hosts (they run in parallel workers otherwise).
LOCK = HOSTS_ENV.parent / "hosts.lock"

#: Everything Dockyard made on a host: apps' and its own containers, networks, state, images.
WIPE = ("ids=$(docker ps -aq --filter label=dockyard.app; docker ps -aq --filter "
        "label=dockyard.role); [ -z \"$ids\" ] || docker rm -f $ids; "
        "docker rm -f dockyard-haproxy dockyard-haproxy-next dockyard-router; "
        "docker network prune -f; rm -rf /var/lib/dockyard/*; "
        "docker images -q 'dockyard/*' | xargs -r docker rmi -f")


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    """The namespace hosts belong to one test (or test module) at a time: test_ship deploys
    one server to HOST1, test_cluster makes the three one swarm."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def hosts() -> dict[str, str]:
    """HOST1..HOST3 -> ssh://root@ADDR:22 (empty when testbed/up has not started them)."""
    if not HOSTS_ENV.exists():
        return {}
    return dict(line.split("=", 1) for line in HOSTS_ENV.read_text().split() if "=" in line)


def address(url: str) -> str:
    return url.split("@", 1)[1].rsplit(":", 1)[0]


def on_host(addr: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a command on a host over SSH (each word quoted)."""
    return subprocess.run(["ssh", "-o", "BatchMode=yes", f"root@{addr}", "--",
                           shlex.join(argv)], capture_output=True, text=True, timeout=300,
                          check=False)


def wipe(addr: str) -> None:
    on_host(addr, "sh", "-c", WIPE)


def link_bytes(netns: str, interface: str | None = None) -> dict[str, int]:
    """rx + tx bytes of every interface of a host's namespace but lo (or of ``interface``),
    by name: the kernel's counters, read from /proc/PID/net/dev of the host's sshd (a file
    read, no process started: tests sample it every 20 ms)."""
    host = netns.removeprefix("dockyard-")
    pid = (HOSTS_ENV.parent / "hosts" / host / "sshd.pid").read_text().strip()
    counts = {}
    for line in Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]:
        name, _, fields = line.partition(":")
        name, numbers = name.strip(), fields.split()
        if name != "lo" and interface in (None, name):
            counts[name] = int(numbers[0]) + int(numbers[8])  # rx bytes, tx bytes
    return counts


def pushed_layers(app: str, release: str) -> dict[str, int]:
    """The layers (digest: compressed size) of dockyard/APP:RELEASE in this machine's local
    registry, as the local builder pushed them (the registry started for the read, then
    stopped again)."""
    def docker(*argv: str) -> str:
        return subprocess.run(["docker", *argv], capture_output=True, text=True,
                              check=True).stdout
    docker("start", "dockyard-registry")
    try:
        port = docker("port", "dockyard-registry", "5000/tcp").split()[0].rsplit(":", 1)[1]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v2/dockyard/{app}/manifests/{release}",
            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        for _ in range(50):
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    return {x["digest"]: x["size"] for x in json.load(resp)["layers"]}
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the local registry did not answer")
    finally:
        docker("stop", "--time=2", "dockyard-registry")
