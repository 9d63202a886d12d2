"""Commands for the dockyard-router container and its files. Builders only: no I/O."""

from __future__ import annotations

import io
import tarfile
import time

from dockyard.config.model import ProxyConfig
from dockyard.docker.networks import ROUTER_NETWORK
from dockyard.host.command import Command, change, query
from dockyard.router import config as rc
from dockyard.state import paths

NAME = "dockyard-router"
ROUTER_DIR = f"{paths.ROOT}/router"
ETC_DIR = f"{ROUTER_DIR}/etc"
RUN_DIR = f"{ROUTER_DIR}/run"
API_SOCKET = f"{RUN_DIR}/admin.sock"  # the same socket, seen from the server
LOG_OPTS = ["--log-driver=json-file", "--log-opt=max-size=10m", "--log-opt=max-file=3"]


def exists() -> Command:
    return query(["docker", "ps", "-a", f"--filter=name=^{NAME}$", "--format={{.Names}}"],
                 "is there a router on this server?")


def inspect() -> Command:
    return query(["docker", "inspect", f"--format={INSPECT_FORMAT}", "--", NAME],
                 "is the router running, and on which networks?")


INSPECT_FORMAT = ("{{.State.Running}}|{{.State.StartedAt}}|{{range $k, $v := "
                  ".NetworkSettings.Networks}}{{$k}} {{end}}")


def parse_inspect(text: str) -> tuple[bool, str, set[str]]:
    running, _, rest = text.strip().partition("|")
    started, _, networks = rest.partition("|")
    return running == "true", started, set(networks.split())


def write_files(files: dict[str, bytes], *, private: set[str] = frozenset()) -> Command:  # type: ignore[assignment]
    """Upload the router's files as one tar over stdin; each file replaced by a rename, so a
    router that restarts meanwhile never reads half a file. ``private`` files (keys) are 0640:
    readable by the router through the SSH user's group, by nobody else."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o640 if name in private else 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    names = " ".join(sorted(files))
    script = (
        f"set -e; mkdir -p {ETC_DIR}/certs {RUN_DIR}; chmod 0755 {ROUTER_DIR} {ETC_DIR}; "
        f"chmod 0750 {ETC_DIR}/certs; chmod 0770 {RUN_DIR}; "
        f"tmp=$(mktemp -d {ETC_DIR}/.new.XXXXXX); tar -x --no-same-owner -f - -C \"$tmp\"; "
        f'for f in {names}; do mv "$tmp/$f" "{ETC_DIR}/$f"; done; rm -rf "$tmp"; '
        # kept by the certificate container, created empty here so the router can start
        f'[ -e {ETC_DIR}/certs/crt-list ] || : > {ETC_DIR}/certs/crt-list; '
        f'[ -e {ETC_DIR}/tls.map ] || : > {ETC_DIR}/tls.map'
    )
    return change(["sh", "-c", script],
                  "write the router's configuration, rebuilt from Dockyard's state, so a "
                  "restarted router comes back routing every app (no reload now)",
                  stdin=buf.getvalue(), stdin_label=f"<router files: {names}>")


def has_default_cert() -> Command:
    return query(["test", "-s", f"{ETC_DIR}/certs/default.pem"],
                 "does the router already have its default certificate?")


def remove() -> Command:
    return change(["docker", "rm", "-f", "--", NAME],
                  "remove the old router container; its replacement starts right after")


def start() -> Command:
    return change(["docker", "start", "--", NAME], "start the stopped router")


def run(settings: ProxyConfig, *, gid: int) -> Command:
    return change(
        ["docker", "run", "-d", f"--name={NAME}",
         "--label=dockyard.role=router",
         f"--network={ROUTER_NETWORK}",
         "--restart=unless-stopped", "--init", *LOG_OPTS,
         f"--group-add={gid}",
         f"--publish={settings.http_port}:{rc.HTTP_PORT}",
         f"--publish={settings.https_port}:{rc.HTTPS_PORT}",
         f"--volume={ETC_DIR}:{rc.CONFIG_DIR}:ro",
         f"--volume={RUN_DIR}:{rc.RUN_DIR}",
         "--", settings.router_image],
        f"start the router: it publishes ports {settings.http_port} and {settings.https_port} "
        "and routes each request to its app by host name",
    )
