"""HTTPS on the testbed: certificates from Pebble (a real ACME CA) obtained by lego in the
certificate container, installed in the router through its Runtime API; renewals with no
command; redirects; websockets and server-sent events across deploys and renewals."""

from __future__ import annotations

import itertools
import json
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    CREATED,
    HTTP_PORT,
    HTTPS_PORT,
    SSH_HOST,
    STATE,
    TESTBED,
    hello_config,
    https_proxy,
    router_identity,
    sh,
    soak,
    ws_echo,
    ws_upgrade,
    zd_probe,
)
from tests.helpers import REPO, dockyard

CERTS = Path("/var/lib/dockyard/certs")


def tls_config(directory: Path, name: str, domain: str, *, image: str | None = None,
               version: str = "v1") -> Path:
    if image is None:
        path = hello_config(directory, name=name, domain=domain, version=version, tls=True)
        text = path.read_text()
        path.write_text(text[: text.index("[proxy]")] + https_proxy())
        return path
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dockyard.toml"
    path.write_text(f'[app]\nname = "{name}"\n[server]\nhost = "{SSH_HOST}"\n'
                    f'[build]\nimage = "{image}"\n'
                    f'[web]\nport = 8000\ndomains = ["{domain}"]\n'
                    'healthcheck_interval = "500ms"\n'
                    '[deploy]\ndrain_timeout = "5s"\nstop_timeout = "5s"\n' + https_proxy())
    CREATED.append(path)
    return path


def tls_socket(domain: str, root: Path, port: int = HTTPS_PORT) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(root))
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname=domain)


def https_get(domain: str, root: Path, path: str = "/") -> tuple[int, str, dict[str, object]]:
    with tls_socket(domain, root) as sock:
        cert = sock.getpeercert()
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {domain}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
    return int(head.split()[1]), body, dict(cert or {})


def http_get(host: str, path: str = "/") -> tuple[int, dict[str, str], str]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode()
    finally:
        conn.close()


def serial(domain: str, root: Path) -> str:
    return str(https_get(domain, root, "/up")[2]["serialNumber"])


def apply_and_deploy(cfg: Path) -> None:
    run = dockyard("-c", str(cfg), "router", "apply", "--yes")  # nothing to do: shared
    assert run.returncode == 0, run.output
    run = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert run.returncode == 0, run.output
    assert "warning: no certificate" not in run.output, run.output


def pebble_log() -> str:
    return (TESTBED / "pebble.log").read_text(errors="replace")


@pytest.mark.exclusive
def test_https_with_an_acme_certificate_redirects_and_restarts(
        alone: None, tmp_path: Path, issuer_root: Path) -> None:
    cfg = tls_config(tmp_path / "hello", "hello", "hello.test")
    apply_and_deploy(cfg)

    status, body, cert = https_get("hello.test", issuer_root)
    assert (status, body.strip()) == (200, "hello v1")
    subject = dict(x[0] for x in cert["subject"])  # type: ignore[index]
    issuer = dict(x[0] for x in cert["issuer"])  # type: ignore[index]
    assert subject["commonName"] == "hello.test"
    assert issuer["commonName"].startswith("Pebble Intermediate CA")
    # the router logged Pebble's GET of the challenge, sent to the ACME client, in its
    # request log (in memory, read with dockyard router logs), not in Docker's log
    logs = dockyard("-c", str(cfg), "router", "logs").stdout
    assert any("(acme challenge)  200  GET /.well-known/acme-challenge/" in line
               for line in logs.splitlines()), logs
    assert "GET /.well-known" not in sh("docker", "logs", "dockyard-haproxy").stdout
    # plain HTTP redirects to HTTPS
    code, headers, _ = http_get("hello.test")
    assert code == 301 and headers["location"] == "https://hello.test/"
    # a name nobody configured: a clear 404, and no ACME order for it
    code, _, text = http_get("nobody.test")
    assert code == 404 and "No app is served under this name" in text
    code, _, _ = http_get("nobody.test", "/.well-known/acme-challenge/abc")
    assert code == 404
    assert "nobody.test" not in pebble_log()
    assert not (CERTS / "status" / "nobody.test").exists()

    status_json = json.loads(dockyard("-c", str(cfg), "--json", "status").stdout)
    [row] = status_json["domains"]
    assert row["domain"] == "hello.test" and row["https"] == "yes"
    assert "Pebble" in row["issuer"] and row["expires"].endswith("GMT")

    # the router restarted: the same certificate is served again, with no new ACME order
    before = serial("hello.test", issuer_root)
    orders = pebble_log().count("Issued certificate")
    result = (CERTS / "status" / "hello.test" / "result").read_text()
    sh("docker", "restart", "dockyard-haproxy")
    deadline = time.monotonic() + 30
    while True:
        try:
            after = serial("hello.test", issuer_root)
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.3)
    if (CERTS / "status" / "hello.test" / "result").read_text() == result:  # no renewal raced
        assert after == before
        assert pebble_log().count("Issued certificate") == orders


@pytest.mark.soak
def test_https_deploys_under_load_and_renewal_without_a_command(
        clean: None, tmp_path: Path, issuer_root: Path) -> None:
    cfg = tls_config(tmp_path / "hello", "tlsload", "tlsload.test")
    apply_and_deploy(cfg)
    identity = router_identity()
    versions = " ".join(["v2", "v1"] * soak(2))
    loop = (f'for v in {versions}; do sed -i "s/VERSION = \\"v[0-9]*\\"/VERSION = \\"$v\\"/" '
            f'{cfg} && {shlex.quote(sys.executable)} -m dockyard -c {cfg} deploy || exit 1; done')
    probe = subprocess.run([*zd_probe(), "--url", f"https://127.0.0.1:{HTTPS_PORT}/", "--host",
                            "tlsload.test", "--cafile", str(issuer_root), "--post", "--threads",
                            "4", "--max-seconds", "400", "--", "sh", "-c", loop],
                           capture_output=True, text=True, timeout=480, cwd=REPO)
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert probe.returncode == 0 and result["failed"] == 0, (result, probe.stderr[-2000:])
    assert result["command_exit"] == 0, (result, probe.stderr[-2000:])  # the deploys worked
    assert {b["body"] for b in result["bodies"]} == {"hello v1", "hello v2"}
    assert router_identity() == identity  # never reloaded or restarted

    # the certificate lives 120 s on the testbed: a new one is served within 3 minutes,
    # without any Dockyard command
    first = serial("tlsload.test", issuer_root)
    deadline = time.monotonic() + 180
    while serial("tlsload.test", issuer_root) == first:
        assert time.monotonic() < deadline, "no renewal within 3 minutes"
        time.sleep(2)
    assert router_identity() == identity


def ws_connect(domain: str, root: Path) -> ssl.SSLSocket:
    sock = tls_socket(domain, root)
    ws_upgrade(sock, domain)
    return sock


def test_websocket_and_sse_stay_open_through_deploys_new_names_and_renewals(
        clean: None, tmp_path: Path, issuer_root: Path) -> None:
    app_a = tls_config(tmp_path / "a", "wsa", "wsa.test")
    app_b = tls_config(tmp_path / "b", "wsb", "wsb.test", image="dockyard-testbed/ws")
    apply_and_deploy(app_a)
    apply_and_deploy(app_b)
    status, body, _ = https_get("wsb.test", issuer_root, "/headers")
    assert status == 200
    assert "X-Forwarded-Proto: https" in body and "X-Forwarded-Host: wsb.test" in body
    assert "X-Forwarded-For: " in body and "X-Forwarded-For: \n" not in body

    ws = ws_connect("wsb.test", issuer_root)
    opened = time.monotonic()
    assert ws_echo(ws, "hello") == "echo hello"
    ticks: list[float] = []
    sse_error: list[BaseException] = []
    stop = threading.Event()

    def read_events() -> None:
        try:
            with tls_socket("wsb.test", issuer_root) as sock:
                sock.settimeout(10)
                sock.sendall(b"GET /events HTTP/1.1\r\nHost: wsb.test\r\n"
                             b"Accept: text/event-stream\r\n\r\n")
                buf = b""
                while not stop.is_set():
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("the event stream was closed")
                    buf += chunk
                    while b"\n\n" in buf:
                        event, buf = buf.split(b"\n\n", 1)
                        if b"data: tick" in event:
                            ticks.append(time.monotonic())
        except BaseException as exc:  # reported by the test below
            if not stop.is_set():
                sse_error.append(exc)

    reader = threading.Thread(target=read_events, daemon=True)
    reader.start()
    try:
        # app A deploys 5 times
        for version in ("v2", "v1", "v2", "v1", "v2"):
            text = app_a.read_text()
            app_a.write_text(text.replace('VERSION = "v1"', f'VERSION = "{version}"')
                             .replace('VERSION = "v2"', f'VERSION = "{version}"'))
            run = dockyard("-c", str(app_a), "deploy", timeout=300)
            assert run.returncode == 0, run.output
        # a third app with a new name gets its certificate
        app_c = tls_config(tmp_path / "c", "wsc", "wsc.test")
        run = dockyard("-c", str(app_c), "deploy", timeout=300)
        assert run.returncode == 0 and "warning: no certificate" not in run.output, run.output
        assert https_get("wsc.test", issuer_root)[0] == 200
        # and a renewal runs
        before = serial("wsa.test", issuer_root)
        run = dockyard("-c", str(app_a), "certs", "renew")
        assert run.returncode == 0, run.output
        assert serial("wsa.test", issuer_root) != before
        # the websocket has been idle since it opened; hold it at least 90 s
        time.sleep(max(0.0, 90 - (time.monotonic() - opened)))
        assert ws_echo(ws, "still here") == "echo still here"
    finally:
        stop.set()
        ws.close()
    assert not sse_error, sse_error
    assert len(ticks) > 60
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 5, max(gaps)
    # removing an app that runs a named image removes its release tags, never that image
    run = dockyard("-c", str(app_b), "remove", "--yes")
    assert run.returncode == 0, run.output
    assert sh("docker", "image", "inspect", "dockyard-testbed/ws", check=False).returncode == 0
    assert sh("docker", "image", "ls", "-q", "dockyard/wsb").stdout.strip() == ""


def test_domains_are_added_and_removed_without_a_deploy(clean: None, tmp_path: Path,
                                                        issuer_root: Path) -> None:
    cfg = tls_config(tmp_path / "hello", "tlsdom", "tlsdom.test")
    apply_and_deploy(cfg)
    identity = router_identity()
    run = dockyard("-c", str(cfg), "domains", "add", "www.tlsdom.test")
    assert run.returncode == 0, run.output
    status, body, cert = https_get("www.tlsdom.test", issuer_root)
    assert (status, body.strip()) == (200, "hello v1")
    assert dict(x[0] for x in cert["subject"])["commonName"] == "www.tlsdom.test"  # type: ignore[index]
    listed = json.loads(dockyard("-c", str(cfg), "--json", "domains", "list").stdout)
    assert [d["domain"] for d in listed["domains"]] == ["tlsdom.test", "www.tlsdom.test"]
    assert all(d["https"] == "yes" for d in listed["domains"])
    # the server's list is the truth: a deploy keeps the added name, and says so
    run = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert run.returncode == 0, run.output
    assert "www.tlsdom.test" in run.stderr and "server's list is the truth" in run.stderr
    assert https_get("www.tlsdom.test", issuer_root)[0] == 200
    run = dockyard("-c", str(cfg), "domains", "remove", "www.tlsdom.test")
    assert run.returncode == 0, run.output
    code, _, text = http_get("www.tlsdom.test")
    assert code == 404 and "No app is served" in text  # no redirect, no route
    assert http_get("tlsdom.test")[0] == 301
    assert router_identity() == identity
    run = dockyard("-c", str(cfg), "domains", "remove", "nope.test")
    assert run.returncode == 2 and "not one of tlsdom's domains" in run.stderr

    # remove keeps the certificate (and says how to delete it); a second remove deletes it
    on_disk = [STATE / "router" / "etc" / "certs" / "tlsdom.test.pem",
               STATE / "certs" / "lego" / "certificates" / "tlsdom.test.pem"]
    assert all(p.exists() for p in on_disk)
    run = dockyard("-c", str(cfg), "remove", "--yes")
    assert run.returncode == 0, run.output
    assert ("kept the certificates of tlsdom.test (no longer served; a new deploy of these "
            "names needs no new order): dockyard remove --certificates deletes them"
            ) in " ".join(run.stdout.split())
    assert all(p.exists() for p in on_disk)
    run = dockyard("-c", str(cfg), "remove", "--yes", "--certificates")
    assert run.returncode == 0, run.output
    assert "removed the certificates of tlsdom.test" in run.stdout and "kept" not in run.stdout
    assert not any(p.exists() for p in on_disk)
    loaded = sh("docker", "exec", "dockyard-certs", "sh", "-c",
                "echo 'show ssl cert' | nc 127.0.0.1 9999").stdout
    assert "/certs/default.pem" in loaded and "/tlsdom.test.pem" not in loaded  # nor in memory
