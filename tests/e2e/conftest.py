"""e2e fixtures: the testbed (real dockerd, real sshd on 127.0.0.1:2222, Pebble).

Two kinds of tests:

- most run in parallel (pytest-xdist): each owns its apps (names and domains no other test
  uses), which it removes afterwards (``clean``), and they share one router, set up once per
  run with ``SHARED_PROXY`` (ports 18080/18443, the testbed's images, Pebble as the ACME CA);
- ``exclusive`` ones change what every app shares (they restart dockerd or the router, change
  the router's settings, or need a server Dockyard never touched): they run alone, after the
  others (scripts/test), each on a server wiped before and after (``alone``).

These tests fail, not skip, when the testbed is down: run testbed/up (the README's test
command does it first).
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO

STATE = Path("/var/lib/dockyard")
TESTBED = Path("/var/lib/dockyard-testbed")
SSH_LOG = TESTBED / "ssh-commands.log"
SSH_HOST = "ssh://root@127.0.0.1:2222"
HTTP_PORT = 18080
HTTPS_PORT = 18443
PEBBLE_ENV = TESTBED / "pebble.env"
#: Router settings every test's dockyard.toml carries (so none contradicts the server's).
PROXY = (f'[proxy]\nhttp_port = {HTTP_PORT}\nhttps_port = {HTTPS_PORT}\n'
         'router_image = "dockyard-testbed/router"\ntools_image = "dockyard-testbed/tools"\n')


def pebble() -> dict[str, str]:
    env = dict(line.split("=", 1) for line in PEBBLE_ENV.read_text().split() if "=" in line)
    assert {"ACME_CA", "ACME_CA_ROOT", "PEBBLE_MGMT"} <= set(env), env
    return env


def acme_proxy() -> str:
    """The ACME part of the shared settings: the testbed's Pebble (its HTTP-01 checks come to
    HTTP_PORT, where the router answers them)."""
    env = pebble()
    return ('acme_image = "dockyard-testbed/acme"\nacme_email = "ops@dockyard.test"\n'
            f'acme_ca = "{env["ACME_CA"]}"\nacme_ca_root = "{env["ACME_CA_ROOT"]}"\n'
            'cert_wait = "60s"\n')


def shared_proxy() -> str:
    return PROXY + acme_proxy()


#: Configs the current test wrote: removed (dockyard remove) when it ends.
CREATED: list[Path] = []


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=120)


def ws_upgrade(sock: socket.socket, host: str) -> None:
    """Open a websocket on ``sock`` (plain or TLS) to the ws test app's /ws path."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head


def ws_echo(sock: socket.socket, text: str) -> str:
    """One masked text frame out, the echo's text back."""
    data = text.encode()
    mask = os.urandom(4)
    sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask +
                 bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    head = sock.recv(2)
    return sock.recv(head[1] & 0x7F).decode()


def bridge_gateway() -> str:
    """The server's address on Docker's default bridge (docker0), where containers reach it.
    Docker records it in the network's IPAM config only when it made docker0 itself: else
    the subnet's first address, as Docker gives it to docker0."""
    import ipaddress

    seen = sh("docker", "network", "inspect", "--format",
              "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}", "bridge").stdout.split()
    if len(seen) == 2:
        return seen[0]
    return str(next(ipaddress.ip_network(seen[-1]).hosts()))


def clean_slate() -> None:
    """Remove every container and file Dockyard created on this test server."""
    for label in ("dockyard.role", "dockyard.app"):
        ids = sh("docker", "ps", "-aq", "--filter", f"label={label}").stdout.split()
        if ids:
            sh("docker", "rm", "-f", *ids)
    for label in ("dockyard.role", "dockyard.app"):
        nets = sh("docker", "network", "ls", "-q", "--filter", f"label={label}").stdout.split()
        if nets:
            sh("docker", "network", "rm", *nets, check=False)
    vols = sh("docker", "volume", "ls", "-q", "--filter", "label=dockyard.app").stdout.split()
    if vols:
        sh("docker", "volume", "rm", "-f", *vols, check=False)
    shutil.rmtree(STATE, ignore_errors=True)


def clean_app(name: str) -> None:
    """What one app left behind (after its dockyard remove, or when that could not run)."""
    ids = sh("docker", "ps", "-aq", "--filter", f"label=dockyard.app={name}").stdout.split()
    if ids:
        sh("docker", "rm", "-f", *ids, check=False)
    if sh("docker", "network", "inspect", name, check=False).returncode == 0:
        sh("docker", "network", "disconnect", "-f", name, "dockyard-router", check=False)
        sh("docker", "network", "rm", name, check=False)
    vols = sh("docker", "volume", "ls", "-q", "--filter", f"label=dockyard.app={name}").stdout
    if vols.split():
        sh("docker", "volume", "rm", "-f", *vols.split(), check=False)
    shutil.rmtree(STATE / "apps" / name, ignore_errors=True)
    shutil.rmtree(STATE / "backups" / name, ignore_errors=True)


def _check_testbed() -> None:
    if sh("docker", "info", check=False).returncode != 0:
        pytest.fail("no Docker engine: run testbed/up first")
    probe = sh("ssh", "-p", "2222", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
               "root@127.0.0.1", "--", "true", check=False)
    if probe.returncode != 0:
        pytest.fail(f"the testbed sshd does not answer ({probe.stderr.strip()}): run testbed/up")


@pytest.fixture(scope="session")
def testbed() -> Iterator[None]:
    """The testbed answers, and (once per run, whichever worker comes first) the server is
    wiped and its router set to the shared settings."""
    _check_testbed()
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getppid()))
    with open(Path(tempfile.gettempdir()) / "dockyard-e2e.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.seek(0)
        if lock.read().strip() != run_id:
            clean_slate()
            _apply_shared_settings()
            lock.seek(0)
            lock.truncate()
            lock.write(run_id)
            lock.flush()
        fcntl.flock(lock, fcntl.LOCK_UN)
    yield


def _apply_shared_settings() -> None:
    from tests.helpers import dockyard

    with tempfile.TemporaryDirectory() as work:
        cfg = Path(work) / "dockyard.toml"
        cfg.write_text(f'[app]\nname = "setup"\n[server]\nhost = "{SSH_HOST}"\n'
                       + shared_proxy())
        run = dockyard("-c", str(cfg), "router", "apply", "--yes", timeout=300)
        assert run.returncode == 0, run.output


@pytest.fixture
def clean(testbed: None) -> Iterator[None]:
    """The test's own apps are removed when it ends (by dockyard remove, then by label)."""
    CREATED.clear()
    yield
    from tests.helpers import dockyard

    for cfg in reversed(CREATED):
        if cfg.exists():
            dockyard("-c", str(cfg), "remove", "--yes", "--volumes", timeout=120)
            name = re.search(r'^name = "([^"]+)"', cfg.read_text(), re.M)
            if name:
                clean_app(name.group(1))
    CREATED.clear()


@pytest.fixture
def alone(testbed: None) -> Iterator[None]:
    """An exclusive test: a server wiped before and after (it runs with no other test)."""
    clean_slate()
    yield
    clean_slate()


class SshLog:
    """What the testbed's sshd wrapper logged since this object was made."""

    def __init__(self) -> None:
        self.offset = SSH_LOG.stat().st_size if SSH_LOG.exists() else 0

    def text(self) -> str:
        """Everything logged since (commands span lines: inline scripts are sent whole)."""
        if not SSH_LOG.exists():
            return ""
        with SSH_LOG.open("rb") as fh:
            fh.seek(self.offset)
            return fh.read().decode("utf-8", "replace")

    def commands(self) -> list[str]:
        """The commands, whole (an inline script spans lines), without their time stamps."""
        parts = re.split(r"(?m)^\d{4}-\d\d-\d\dT\S+Z ", self.text())
        return [part.rstrip("\n") for part in parts[1:]]


@pytest.fixture
def ssh_log() -> SshLog:
    return SshLog()


def app_config(directory: Path, name: str = "hello", host: str = SSH_HOST, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dockyard.toml"
    path.write_text(f'[app]\nname = "{name}"\n[server]\nhost = "{host}"\n{extra}')
    CREATED.append(path)
    return path


HELLO = REPO / "examples" / "hello"


def hello_config(directory: Path, *, name: str = "hello", version: str = "v1",
                 domain: str | None = None, host: str = SSH_HOST, web: str = "",
                 extra: str = "", tls: bool = False) -> Path:
    """The hello example, built from its Dockerfile with the testbed's busybox as base;
    plain HTTP unless ``tls`` (the shared router has an ACME account)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dockyard.toml"
    path.write_text(
        f'[app]\nname = "{name}"\n[server]\nhost = "{host}"\n'
        f'[build]\ncontext = "{HELLO}"\n'
        f'args = {{ BASE = "dockyard-testbed/tools", VERSION = "{version}" }}\n'
        f'[web]\nport = 8080\ndomains = ["{domain or name + ".test"}"]\n'
        f'healthcheck_interval = "500ms"\ntls = {str(tls).lower()}\n{web}'
        f'[env]\nGREETING = "hi from {name}"\n'
        f"[deploy]\ndrain_timeout = \"10s\"\nstop_timeout = \"5s\"\n{extra}{PROXY}")
    CREATED.append(path)
    return path


def set_version(path: Path, version: str) -> None:
    text = path.read_text()
    import re

    path.write_text(re.sub(r'VERSION = "v\d+"', f'VERSION = "{version}"', text))


def port_proxies() -> list[str]:
    """The docker-proxy processes of the router's published ports (command lines with the
    address they forward to, and pids): they change when Docker moves the ports to another
    of the router's networks, which refuses connections for a moment."""
    out = sh("ps", "-eo", "pid,args").stdout
    return sorted(line.strip() for line in out.splitlines()
                  if "docker-proxy" in line and f"-host-port {HTTP_PORT}" in line
                  and _this_network(line.split()[0]))


def _this_network(pid: str) -> bool:
    """Is the process in this machine's network namespace? The namespace hosts' dockerds
    (testbed/hosts; the cluster test publishes the same port there) share its process
    list."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
    except OSError:
        return False


def router_identity() -> tuple[str, str]:
    """(container start time, HAProxy master pid from the host): both stay the same while
    the router is never restarted or reloaded."""
    started = sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "dockyard-haproxy").stdout
    top = sh("docker", "top", "dockyard-haproxy", "-o", "pid,args").stdout
    pids = sorted(line.split()[0] for line in top.splitlines()[1:] if "haproxy" in line)
    return started.strip(), ",".join(pids)


def app_containers(app: str) -> list[tuple[str, str, str]]:
    """(name, process, release) of the app's containers."""
    out = sh("docker", "ps", "-a", "--filter", f"label=dockyard.app={app}", "--format",
             '{{.Names}}|{{.Label "dockyard.process"}}|{{.Label "dockyard.release"}}').stdout
    return [tuple(line.split("|")) for line in out.splitlines() if line]  # type: ignore[misc]


def get(port: int, host: str, path: str = "/") -> tuple[int, str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode().strip()
    finally:
        conn.close()


def wait_answer(port: int, host: str, expect: str, seconds: float = 30) -> float:
    """Seconds until GET / answers ``expect``; fails after ``seconds``."""
    import time

    start = time.monotonic()
    last: object = None
    while time.monotonic() - start < seconds:
        try:
            status, body = get(port, host)
            if status == 200 and body == expect:
                return time.monotonic() - start
            last = (status, body)
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{host} did not answer {expect!r} within {seconds}s (last: {last})")


GUESTBOOK = REPO / "examples" / "guestbook"
DB_PASSWORD = "gb-pw-7c1e9a55"


def guestbook_config(directory: Path, *, name: str = "guestbook", extra: str = "",
                     backup: str = "") -> Path:
    """examples/guestbook on the testbed: web + worker + PostgreSQL accessory (domain
    NAME.test, container NAME-db)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dockyard.toml"
    path.write_text(
        f'[app]\nname = "{name}"\n[server]\nhost = "{SSH_HOST}"\n'
        f'[build]\ncontext = "{GUESTBOOK}"\n'
        'args = { BASE = "dockyard-testbed/python", VERSION = "v1" }\n'
        f'[web]\nport = 8000\ndomains = ["{name}.test"]\nhealthcheck_interval = "500ms"\n'
        'tls = false\n'
        '[processes]\nworker = ["python3", "/app/worker.py"]\n'
        '[release]\ncommand = ["python3", "/app/migrate.py"]\n'
        '[env]\nPGHOST = "db"\nPGUSER = "guestbook"\nPGDATABASE = "guestbook"\n'
        '[deploy]\ndrain_timeout = "10s"\nstop_timeout = "5s"\n'
        '[accessories.db]\nimage = "dockyard-testbed/postgres"\n'
        'env = { POSTGRES_USER = "guestbook", POSTGRES_DB = "guestbook" }\n'
        f'secrets = ["POSTGRES_PASSWORD"]\n{backup}\n{extra}{PROXY}')
    CREATED.append(path)
    return path


def zd_probe() -> list[str]:
    """The reference zero-downtime probe (../shared/tools/zd-probe)."""

    for candidate in (REPO.parent / "shared" / "tools" / "zd-probe",
                      Path("/work/shared/tools/zd-probe")):
        if candidate.exists():
            return [sys.executable, str(candidate)]
    pytest.fail("zd-probe not found at ../shared/tools/zd-probe")


def restart_dockerd() -> None:
    """Stop the testbed's dockerd by its PID and bring it back with testbed/up."""
    import os
    import signal
    import time

    pid = int((TESTBED / "dockerd.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(150):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    subprocess.run([str(REPO / "testbed" / "up")], check=True, capture_output=True, timeout=600)


def https_proxy() -> str:
    """What a test that wants HTTPS writes: the shared settings, ACME included."""
    return shared_proxy()


@pytest.fixture
def issuer_root(tmp_path: Path) -> Path:
    """Pebble's issuing root (/roots/0 on its management API): what clients trust."""
    env = pebble()
    ctx = ssl.create_default_context(cafile=env["ACME_CA_ROOT"])
    with urllib.request.urlopen(f"{env['PEBBLE_MGMT']}/roots/0", context=ctx,
                                timeout=10) as resp:
        pem = resp.read()
    path = tmp_path / "pebble-root.pem"
    path.write_bytes(pem)
    return path


def soak(default: int) -> int:
    """A soak loop's count: small in CI, large from bench/soak (DOCKYARD_SOAK=N times it)."""
    return default * max(1, int(os.environ.get("DOCKYARD_SOAK", "1")))


def wait_retired(app: str, seconds: float = 60) -> None:
    """Until the app's old releases are retired (drained, stopped, removed on the server,
    after the deploy that replaced them returned): no retirement container left, and the
    app's processes all of one release. (The retirement starts just after the deploy
    returned: right then, it may not exist yet.)"""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = app_containers(app)
        retiring = [r for r in rows if r[2].startswith("v")]  # retire.sh's: "vN"
        releases = {r[2] for r in rows if r[1] and r[1] not in ("release", "run")}
        if not retiring and len(releases) <= 1:
            return
        time.sleep(0.2)
    raise AssertionError(f"{app}'s old release was not retired within {seconds}s: "
                         f"{app_containers(app)}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cluster test is the longest single test (minutes of steps that must run in
    order): first in the collection, so pytest-xdist starts it at once and the other
    workers share the rest meanwhile."""
    items.sort(key=lambda item: 0 if "test_cluster.py" in item.nodeid else 1)
