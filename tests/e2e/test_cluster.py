"""The same app on three servers through Docker Swarm (issue 13), on the testbed's three
namespace hosts: one cluster for the whole acceptance, its steps in order in one test (the
fixture takes the hosts' lock, so test_ship's one-server deploys to HOST1 never overlap it).

The app is examples/guestbook (web + worker + PostgreSQL, the migration as its release
command) with [web] replicas = 3; the load is the reference probe (GET and POST, keep-alive
and new connections) sent to two nodes' routers at once."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import nshosts

from .conftest import acme_proxy, guestbook_config, hello_config, zd_probe

APP = "swarmbook"
DOMAIN = f"{APP}.test"
PORT = 18080  # the shared settings' http_port (PROXY), where Pebble checks
HTTPS = 18443
#: Everything a cluster test leaves on a host: the swarm itself, then what WIPE removes.
LEAVE = "docker swarm leave --force >/dev/null 2>&1; docker volume rm -f swarmbook-db-data " \
        "dockyard-cluster-registry >/dev/null 2>&1; true"


def dockyard(cfg: Path, *args: str, check: bool = True,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "dockyard", "-c", str(cfg), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


@pytest.fixture
def cluster(tmp_path: Path, issuer_root: Path) -> Iterator[tuple[Path, list[str]]]:
    """(dockyard.toml, the three hosts' addresses): a swarm of three managers, the app
    deployed once (v1) with its database, over HTTPS from the testbed's Pebble (which
    resolves the name to the first node only). Everything is removed afterwards."""
    urls = [nshosts.hosts().get(f"HOST{n}") for n in (1, 2, 3)]
    if None in urls:
        pytest.fail("no namespace hosts: run testbed/up (it starts them)")
    addrs = [nshosts.address(u) for u in urls if u]
    lock = nshosts.exclusive()
    lock.__enter__()
    try:
        for addr in addrs:
            nshosts.on_host(addr, "sh", "-c", LEAVE)
            nshosts.wipe(addr)
        directory = tmp_path / "cluster"
        directory.mkdir()
        # examples/guestbook as every e2e test deploys it, on the three hosts
        cfg = guestbook_config(directory, name=APP)
        hosts = ", ".join(f'"{u}"' for u in urls)
        text = re.sub(r'^host = .*$', f"hosts = [{hosts}]", cfg.read_text(), count=1,
                      flags=re.M)
        text = text.replace("tls = false\n", 'tls = true\nreplicas = 3\n'
                            'response_timeout = "4s"\n', 1)
        assert "replicas" in text and "hosts = [" in text
        cfg.write_text(text + acme_proxy())
        # the third host already serves a one-server app: it keeps serving, with no failed
        # request, while its host joins the swarm and its router joins the cluster's app
        alone = hello_config(directory / "alone", name="alone", host=urls[2] or "")
        alone.write_text(alone.read_text() + acme_proxy())  # the host's [proxy], as the cluster's
        dockyard(alone, "deploy")
        stop = directory / "stop-alone"
        before = subprocess.Popen(
            [*zd_probe(), "--url", f"http://{addrs[2]}:{PORT}/", "--host", "alone.test",
             "--post", "--max-seconds", "400", "--", "sh", "-c",
             until(stop)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        init = dockyard(cfg, "cluster", "init")
        assert init.stdout.count("joined as a manager") == 2, init.stdout
        again = dockyard(cfg, "--json", "cluster", "init")  # idempotent: nothing joins twice
        assert sorted(n["role"] for n in json.loads(again.stdout)) == ["manager"] * 3
        password = subprocess.run(
            [sys.executable, "-m", "dockyard", "-c", str(cfg), "env", "set",
             "POSTGRES_PASSWORD", "-"], input="cluster-db-secret-7341", text=True,
            capture_output=True, timeout=120, check=False)
        assert password.returncode == 0, password.stderr
        challtestsrv("add-a", {"host": DOMAIN, "addresses": [addrs[0]]})
        run = dockyard(cfg, "deploy")
        assert "no certificate" not in run.stderr, run.stderr[-2000:]
        stop.touch()
        served = result(before)
        assert served["failed"] == 0 and served["ok"], served
        dockyard(alone, "remove", "--yes")
        yield cfg, addrs
    finally:
        if "stop" in locals():
            stop.touch()  # the joining host's probe ends even when a step above failed
        try:
            if "cfg" in locals():
                dockyard(cfg, "remove", "--yes", "--volumes", check=False)
                dockyard(cfg, "cluster", "leave", check=False)
                challtestsrv("clear-a", {"host": DOMAIN})
        finally:
            for addr in addrs:
                nshosts.on_host(addr, "sh", "-c", LEAVE)
                nshosts.wipe(addr)
            lock.__exit__(None, None, None)


def challtestsrv(call: str, body: dict[str, object]) -> None:
    """Pebble's DNS (pebble-challtestsrv's management API)."""
    request = urllib.request.Request(f"http://127.0.0.1:8055/{call}", method="POST",
                                     data=json.dumps(body).encode())
    urllib.request.urlopen(request, timeout=10).close()


def set_version(cfg: Path, version: str) -> None:
    text = cfg.read_text()
    for old in ("v1", "v2", "v3"):
        text = text.replace(f'VERSION = "{old}"', f'VERSION = "{version}"')
    cfg.write_text(text)


def probe(addr: str, root: Path, *command: str, post: bool = True, seconds: float = 400,
          threads: int = 2) -> subprocess.Popen[str]:
    """The reference probe over HTTPS (one keep-alive thread, one with a new connection
    per request; two, not four: the cluster's load shares two cores with the other tests)."""
    argv = [*zd_probe(), "--url", f"https://{addr}:{HTTPS}/", "--host", DOMAIN,
            "--cafile", str(root), "--threads", str(threads), "--max-seconds", str(seconds)]
    if post:
        argv.append("--post")
    return subprocess.Popen([*argv, "--", *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen[str], timeout: float = 600) -> dict[str, object]:
    out, err = proc.communicate(timeout=timeout)
    lines = out.strip().splitlines()
    assert lines, err[-2000:]
    data: dict[str, object] = json.loads(lines[-1])
    data["stderr"] = err[-1500:]
    return data


def tasks(cfg: Path) -> list[dict[str, str]]:
    status = json.loads(dockyard(cfg, "--json", "status").stdout)
    return [t for t in status["tasks"] if t["process"] == "web"]


def nodes(cfg: Path) -> dict[str, dict[str, object]]:
    data = json.loads(dockyard(cfg, "--json", "cluster", "status").stdout)
    return {str(n["address"]): n for n in data["nodes"]}


def stop_file(tmp: Path) -> Path:
    return tmp / "stop"


def until(stop: Path, seconds: int = 400) -> str:
    """A probe's command: it ends when the test creates ``stop``, or after ``seconds`` when
    a failed step never does (zd-probe waits for its command)."""
    return f"i=0; while [ ! -e {stop} ] && [ $i -lt {seconds * 5} ]; do sleep 0.2; i=$((i+1)); done"


def https_serial(addr: str, root: Path) -> str:
    """The serial of the certificate a node's router serves for DOMAIN (checked against
    Pebble's root)."""
    ctx = ssl.create_default_context(cafile=str(root))
    with socket.create_connection((addr, HTTPS), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=DOMAIN) as sock:
        return str(sock.getpeercert()["serialNumber"])  # type: ignore[index]


def page(addr: str, root: Path) -> str:
    ctx = ssl.create_default_context(cafile=str(root))
    with socket.create_connection((addr, HTTPS), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=DOMAIN) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {DOMAIN}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode("utf-8", "replace")


def deploys_and_a_rollback_under_load_on_two_routers(cfg: Path, addrs: list[str], root: Path,
                                                     tmp_path: Path) -> None:
    web = tasks(cfg)
    assert len(web) == 3 and len({t["node"] for t in web}) == 3, web  # one per node
    # three deploys and a rollback while two nodes' routers take GETs and POSTs
    log = tmp_path / "deploys.log"  # what each command said, for the assertion's message
    loop = (f'for v in v2 v1 v2; do sed -i "s/VERSION = \\"v[0-9]*\\"/VERSION = \\"$v\\"/" '
            f'{cfg} && {sys.executable} -m dockyard -c {cfg} deploy >>{log} 2>&1 || exit 1; '
            f'done; {sys.executable} -m dockyard -c {cfg} rollback >>{log} 2>&1')
    stop = stop_file(tmp_path)
    second = probe(addrs[1], root, "sh", "-c", until(stop))
    started = time.monotonic()
    first = result(probe(addrs[0], root, "sh", "-c", loop))
    print(f"three deploys and a rollback: {time.monotonic() - started:.1f}s")
    stop.touch()
    other = result(second)
    assert first["command_exit"] == 0, log.read_text()[-4000:]
    for name, data in (("first router", first), ("second router", other)):
        assert data["failed"] == 0, (name, data)
    bodies = {str(b["body"]).split("</title>")[0] for b in first["bodies"]}  # type: ignore[attr-defined]
    assert any("v1" in b for b in bodies) and any("v2" in b for b in bodies), bodies
    # every node answers, with the rollback's version (v1), three tasks on three nodes
    for addr in addrs:
        assert "guestbook v1" in page(addr, root), addr
    web = tasks(cfg)
    assert len(web) == 3 and {t["release"] for t in web} == {"v5"}, web
    # no secret in the services' specs
    spec = nshosts.on_host(addrs[0], "sh", "-c", "docker service inspect $(docker service ls -q)")
    assert "cluster-db-secret-7341" not in spec.stdout and "Env" not in spec.stdout


def drain_moves_tasks_with_no_failed_request(cfg: Path, addrs: list[str], root: Path) -> None:
    host2 = f"ssh://root@{addrs[1]}:22"
    data = result(probe(addrs[0], root, sys.executable, "-m", "dockyard", "-c", str(cfg),
                        "cluster", "drain", addrs[1]))
    assert data["command_exit"] == 0 and data["failed"] == 0, data
    assert nodes(cfg)[addrs[1]]["tasks"] == 0
    assert nodes(cfg)[addrs[1]]["availability"] == "drain"
    dockyard(cfg, "cluster", "activate", host2)
    assert nodes(cfg)[addrs[1]]["availability"] == "active"


def a_node_cut_off_under_load(cfg: Path, addrs: list[str], root: Path, tmp_path: Path) -> None:
    """The third node's link goes down (its containers keep running, unreachable): GETs
    through the other two routers all succeed; POSTs that were in flight to it are counted
    (and printed for the notes); Swarm runs three tasks on the two others within 60 s."""
    stop = stop_file(tmp_path)
    wait_stop = ["sh", "-c", until(stop)]
    gets = [probe(addr, root, *wait_stop, post=False) for addr in addrs[:2]]
    posts = probe(addrs[0], root, *wait_stop)
    time.sleep(3)
    cut = time.monotonic()
    subprocess.run(["ip", "link", "set", "dyh3", "down"], check=True, timeout=10)
    try:
        recovered = None
        while time.monotonic() - cut < 90:
            try:
                web = tasks(cfg)
            except AssertionError:
                web = []
            running = [t for t in web if t["node"] != "dockyard-host3"
                       and t["state"].startswith("Running")]
            if len(running) >= 3:
                recovered = time.monotonic() - cut
                break
            time.sleep(1)
        time.sleep(3)
        stop.touch()
        results = [result(p) for p in gets]
        posted = result(posts)
        print(f"node cut: back to 3 tasks after {recovered}s; GETs {results[0]['ok']} + "
              f"{results[1]['ok']} ok, longest gap "
              f"{max(float(str(r['max_gap_s'])) for r in results)}s; "
              f"POSTs failed: {posted['failed']} of {posted['ok']} ({posted['errors']})")
        assert recovered is not None and recovered <= 60, recovered
        for data in results:
            assert data["failed"] == 0, data
        down = nodes(cfg)[addrs[2]]
        assert down["state"] == "down", down
    finally:
        subprocess.run(["ip", "link", "set", "dyh3", "up"], check=False, timeout=10)
    deadline = time.monotonic() + 90
    while nodes(cfg).get(addrs[2], {}).get("state") != "ready":
        assert time.monotonic() < deadline, "the node did not come back"
        time.sleep(2)


def test_one_app_on_three_servers(cluster: tuple[Path, list[str]], tmp_path: Path,
                                  issuer_root: Path) -> None:
    """The acceptance of issue 13, in order on one cluster (one test: pytest-xdist's
    worksteal would spread separate tests over workers, each making its own cluster).

    HTTPS from the start: every node's router serves a certificate of its own node's
    order (Pebble resolves the name to the first node only: the others' challenges are
    passed on between routers), and by the end (Pebble's certificates live 120 s, renewed
    with a third left) each has renewed, while the other steps ran."""
    cfg, addrs = cluster
    root = issuer_root
    issued = {addr: https_serial(addr, root) for addr in addrs}
    assert len(set(issued.values())) == 3, issued  # one order per node
    steps = [("deploys", lambda: deploys_and_a_rollback_under_load_on_two_routers(
                  cfg, addrs, root, tmp_path / "deploys")),
             ("drain", lambda: drain_moves_tasks_with_no_failed_request(cfg, addrs, root)),
             ("cut", lambda: a_node_cut_off_under_load(cfg, addrs, root, tmp_path / "cut"))]
    for name, step in steps:
        started = time.monotonic()
        (tmp_path / name).mkdir()
        step()
        print(f"{name}: {time.monotonic() - started:.1f}s")
    deadline = time.monotonic() + 150
    while True:
        now = {addr: https_serial(addr, root) for addr in addrs}
        if all(now[a] != issued[a] for a in addrs):
            break
        assert time.monotonic() < deadline, ("a node did not renew", issued, now)
        time.sleep(3)
