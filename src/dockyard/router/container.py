"""Commands for the router's containers and files. Builders only: no I/O.

Two containers, so the HAProxy process can be replaced with no request lost:

- ``dockyard-router`` holds the network namespace: it publishes the ports, is on the router
  network and on every app's network (its name resolves there: parked slots point at it),
  and runs nothing but a sleep. The certificate container and retirements join it.
- ``dockyard-haproxy`` runs HAProxy in that namespace (``--network=container:``). An upgrade
  starts the next one beside it, which takes the listening sockets over from the running one
  (``-x`` on the Runtime API socket, ``expose-fd listeners``), then the old one is told to
  stop softly (SIGUSR1): it stops listening, finishes what it has in flight, closes idle
  keep-alive connections on their next response (``option idle-close-on-response``), exits.

A router made by an earlier Dockyard is one container, ``dockyard-router`` running HAProxy
itself (no ``dockyard.config`` label): it keeps working; ``router apply`` with a new image
moves it to this layout once (about a second of outage, said before it happens).
"""

from __future__ import annotations

from dockyard.config.model import ProxyConfig
from dockyard.docker.networks import ROUTER_NETWORK
from dockyard.host.command import Command, change
from dockyard.router import config as rc
from dockyard.state import paths

#: the network namespace holder (the earlier layout: HAProxy itself)
NAME = "dockyard-router"
DOCKER_SOCKET = "/var/run/docker.sock"
#: the HAProxy container that serves, and its successor during an upgrade
HAPROXY = "dockyard-haproxy"
NEXT = "dockyard-haproxy-next"
#: the holder's dockyard.config label: tells this layout from the earlier one
LAYOUT = "netns-1"
ROUTER_DIR = f"{paths.ROOT}/router"
ETC_DIR = f"{ROUTER_DIR}/etc"
RUN_DIR = f"{ROUTER_DIR}/run"
API_SOCKET = f"{RUN_DIR}/admin.sock"  # the same socket, seen from the server
LOG_OPTS = ["--log-driver=json-file", "--log-opt=max-size=10m", "--log-opt=max-file=3"]
#: how long an old HAProxy may take to finish (hard-stop-after in the config, and a margin)
SOFT_STOP_SECONDS = 45.0
#: The holder's command. Docker 20.10 does not order the starts after a daemon restart or a
#: reboot: HAProxy may start before the holder, fail to join its namespace and stay down
#: (moby/moby#50326). So the holder, once up, starts HAProxy itself (retrying while the
#: engine's API comes up), or restarts it when it runs in a namespace from before the holder's
#: own start; then it sleeps. A HAProxy told to stop for good (restart=no, an upgrade's old
#: one) is left alone.
HOLD = """trap "exit 0" TERM
mine=$(date -u +%Y-%m-%dT%H:%M:%S)
i=0
while [ "$i" -lt 300 ]; do
  seen=$(docker inspect -f '{{.State.Running}} {{.State.StartedAt}} {{.HostConfig.RestartPolicy.Name}}' \
    dockyard-haproxy 2> /dev/null) || { [ "$i" -gt 120 ] && break; sleep 1; i=$((i + 1)); continue; }
  set -- $seen
  [ "$3" = "no" ] && break
  if [ "$1" = "true" ]; then
    started=$(echo "$2" | cut -c1-19)
    if expr "$started" \\< "$mine" > /dev/null; then docker restart dockyard-haproxy > /dev/null && break
    else break; fi
  elif docker start dockyard-haproxy > /dev/null 2>&1; then break; fi
  sleep 1
  i=$((i + 1))
done
while :; do sleep 3600 & wait $!; done"""


def remove() -> Command:
    return change(["docker", "rm", "-f", "--", HAPROXY, NEXT, NAME],
                  "remove the old router containers; their replacements start right after")


def start() -> Command:
    return change(["docker", "start", "--", NAME], "start the stopped router")


def start_haproxy() -> Command:
    return change(["docker", "start", "--", HAPROXY], "start the stopped HAProxy container")


def restart_haproxy() -> Command:
    return change(["docker", "restart", "--", HAPROXY],
                  "restart HAProxy in the holder's new network namespace")


def _on(settings: ProxyConfig) -> str:
    """The address part of --publish: none for 0.0.0.0 (Docker's default: every IPv4 and
    IPv6 address), else ``ADDR:``."""
    return "" if settings.bind == "0.0.0.0" else f"{settings.bind}:"


def run_holder(settings: ProxyConfig) -> Command:
    return change(
        ["docker", "run", "-d", f"--name={NAME}", "--label=dockyard.role=router-netns",
         f"--label=dockyard.config={LAYOUT}", f"--network={ROUTER_NETWORK}",
         "--restart=unless-stopped", "--init", *LOG_OPTS,
         f"--publish={_on(settings)}{settings.http_port}:{rc.HTTP_PORT}",
         f"--publish={_on(settings)}{settings.https_port}:{rc.HTTPS_PORT}",
         f"--volume={DOCKER_SOCKET}:{DOCKER_SOCKET}",
         "--entrypoint=sh", "--", settings.tools_image, "-c", HOLD],
        f"start {NAME}: it holds the router's ports {settings.http_port} and "
        f"{settings.https_port} (on {settings.bind}) and its networks, so HAProxy can be "
        "replaced inside it without closing them")


def run(settings: ProxyConfig, *, gid: int, name: str = HAPROXY,
        take_over: bool = False) -> Command:
    """HAProxy in the holder's namespace; ``take_over``: with the listening sockets of the
    one running now."""
    command = ["haproxy", "-W", "-db", "-f", f"{rc.CONFIG_DIR}/haproxy.cfg",
               "-x", rc.API_SOCKET] if take_over else []
    return change(
        ["docker", "run", "-d", f"--name={name}", "--label=dockyard.role=router",
         f"--network=container:{NAME}", "--restart=unless-stopped", "--init", *LOG_OPTS,
         f"--group-add={gid}",
         f"--volume={ETC_DIR}:{rc.CONFIG_DIR}:ro",
         f"--volume={RUN_DIR}:{rc.RUN_DIR}",
         "--", settings.router_image, *command],
        f"start HAProxy ({settings.router_image}) in {NAME}'s network namespace"
        + (": it takes the listening sockets over from the HAProxy running now, so no "
           "connection is refused" if take_over else ": it routes each request to its app "
           "by host name"))


def retire_old() -> list[Command]:
    """The old HAProxy stops softly: never restarted by its policy, then SIGUSR1."""
    return [change(["docker", "update", "--restart=no", "--", HAPROXY],
                   "the old HAProxy must not be restarted once it exits"),
            change(["docker", "kill", "--signal=USR1", "--", HAPROXY],
                   "the old HAProxy stops softly: it stops listening (the new one has the "
                   "sockets), finishes its requests in flight and closes idle connections "
                   "on their next answer")]


def promote() -> list[Command]:
    return [change(["docker", "rm", "-f", "--", HAPROXY], "remove the old HAProxy (it exited)"),
            change(["docker", "rename", "--", NEXT, HAPROXY],
                   "the new HAProxy takes the usual name")]
