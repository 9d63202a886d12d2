"""`router apply`: server-wide settings change only on purpose, and the router follows."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HTTP_PORT,
    PROXY,
    STATE,
    app_config,
    get,
    hello_config,
    set_version,
    sh,
    wait_answer,
    ws_echo,
    ws_upgrade,
    zd_probe,
)
from tests.helpers import dockyard

pytestmark = pytest.mark.e2e


def started_at() -> str:
    return sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "dockyard-haproxy").stdout


@pytest.mark.exclusive
def test_apply_records_settings_then_recreates_the_router_on_port_change(
        alone: None, tmp_path: Path) -> None:
    cfg = app_config(tmp_path, extra=PROXY)
    dry = dockyard("-c", str(cfg), "--dry-run", "router", "apply")
    assert dry.returncode == 0, dry.output
    assert not (STATE / "proxy.json").exists()

    first = dockyard("-c", str(cfg), "router", "apply", "--yes")
    assert first.returncode == 0, first.output
    # the router runs from now on, with these settings (404 until an app is deployed)
    assert "the router runs" in first.output and started_at().strip()
    assert get(HTTP_PORT, "nothing.test")[0] == 404
    saved = json.loads((STATE / "proxy.json").read_text())
    assert saved["http_port"] == HTTP_PORT and saved["router_image"] == "dockyard-testbed/router"
    unchanged = dockyard("-c", str(cfg), "router", "apply", "--yes")
    assert "nothing to do" in unchanged.output

    # a deploy starts the router with these settings
    hello = hello_config(tmp_path / "hello")
    assert dockyard("-c", str(hello), "deploy", timeout=300).returncode == 0
    assert get(HTTP_PORT, "hello.test") == (200, "hello v1")
    before = started_at()

    # a file that disagrees cannot deploy: it is told the current value and the command
    moved_text = PROXY.replace(f"http_port = {HTTP_PORT}", "http_port = 18081")
    (tmp_path / "moved").mkdir()
    moved = app_config(tmp_path / "moved", extra='[build]\nimage = "dockyard-testbed/hello:v2"\n'
                       + moved_text)
    refused = dockyard("-c", str(moved), "deploy")
    assert refused.returncode == 2 and "error[DY030]" in refused.stderr
    assert "18080" in refused.stderr and "dockyard router apply" in refused.stderr

    no_tty = dockyard("-c", str(moved), "router", "apply", input="")
    assert no_tty.returncode != 0 and "--yes" in no_tty.stderr
    applied = dockyard("-c", str(moved), "router", "apply", "--yes", timeout=120)
    assert applied.returncode == 0, applied.output
    assert "http_port: 18080 -> 18081" in applied.stderr
    assert "will be recreated" in applied.stderr and "recreated" in applied.output
    assert started_at() != before
    # the recreated router routes every app again, from Dockyard's state
    wait_answer(18081, "hello.test", "hello v1", seconds=30)
    audit = (STATE / "audit.log").read_text()
    assert "docker rm -f -- dockyard-haproxy" in audit and '"subcommand":"router apply"' in audit

    # a tools_image-only change records the setting and leaves the router alone
    started = started_at()
    tools = app_config(tmp_path, extra='[proxy]\ntools_image = "dockyard-testbed/tools:other"\n')
    assert dockyard("-c", str(tools), "router", "apply", "--yes").returncode == 0
    assert started_at() == started
    assert json.loads((STATE / "proxy.json").read_text())["http_port"] == 18081


def ws_open(host: str) -> socket.socket:
    """A websocket to the ws test app through the router (plain HTTP)."""
    sock = socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=10)
    ws_upgrade(sock, host)
    return sock


def routers() -> list[tuple[str, str]]:
    """(name, image) of the HAProxy container(s) that run, as an operator would list them."""
    out = sh("docker", "ps", "--filter", "label=dockyard.role=router", "--format",
             "{{.Names}} {{.Image}}").stdout
    return sorted(tuple(line.split()) for line in out.splitlines())  # type: ignore[misc]


@pytest.mark.exclusive
def test_a_new_router_image_takes_over_with_no_failed_request(alone: None,
                                                              tmp_path: Path) -> None:
    """router apply with another image: a new HAProxy takes the listening sockets over from
    the running one, which finishes its requests and exits; the reference load sees no
    failed request, and both apps are routed by the new one."""
    one = hello_config(tmp_path / "one", name="one")
    two = hello_config(tmp_path / "two", name="two", version="v2")
    ws = app_config(tmp_path / "ws", name="wsup", extra='[build]\nimage = "dockyard-testbed/ws"\n'
                    '[web]\nport = 8000\ndomains = ["wsup.test"]\ntls = false\n' + PROXY)
    for cfg in (one, two, ws):
        run = dockyard("-c", str(cfg), "deploy", timeout=300)
        assert run.returncode == 0, run.output
    assert routers() == [("dockyard-haproxy", "dockyard-testbed/router")]
    sh("docker", "tag", "dockyard-testbed/router", "dockyard-testbed/router:upgrade")
    try:
        newer = one.read_text().replace('router_image = "dockyard-testbed/router"',
                                        'router_image = "dockyard-testbed/router:upgrade"')
        assert newer != one.read_text()
        one.write_text(newer)
        socket_before = ws_open("wsup.test")
        assert ws_echo(socket_before, "before") == "echo before"
        for attempt in (1, 2):  # twice: the second hands over from a router the first made
            if attempt == 2:
                one.write_text(newer.replace("router:upgrade", "router:latest"))
            probe = subprocess.run(
                [*zd_probe(), "--url", f"http://127.0.0.1:{HTTP_PORT}/cgi-bin/env",
                 "--host", "one.test", "--post", "--max-seconds", "120", "--",
                 sys.executable, "-m", "dockyard", "-c", str(one), "router", "apply", "--yes"],
                capture_output=True, text=True, timeout=180)
            data = json.loads(probe.stdout.strip().splitlines()[-1])
            print(f"router apply {attempt}: {data['ok']} ok, {data['failed']} failed, longest "
                  f"gap {data['max_gap_s']}s")
            assert data["command_exit"] == 0, probe.stderr[-3000:]
            assert data["failed"] == 0, data
            if attempt == 1:
                # the websocket on the old HAProxy was closed once the new one served (at
                # hard-stop-after, when the old one exits), and a new one works
                socket_before.settimeout(5)
                try:
                    closed = socket_before.recv(64) == b""
                except OSError:
                    closed = True
                assert closed
                socket_after = ws_open("wsup.test")
                assert ws_echo(socket_after, "after") == "echo after"
                socket_after.close()
        assert routers() == [("dockyard-haproxy", "dockyard-testbed/router:latest")]
        assert get(HTTP_PORT, "one.test") == (200, "hello v1")
        assert get(HTTP_PORT, "two.test") == (200, "hello v2")
        # the holder kept the ports and the networks: it was never restarted
        holder = sh("docker", "inspect", "-f", "{{.RestartCount}} {{.State.Running}}",
                    "dockyard-router").stdout.split()
        assert holder == ["0", "true"], holder
        # and deploys go on through the new one (with the file that names its image)
        set_version(one, "v3")
        assert dockyard("-c", str(one), "deploy", timeout=300).returncode == 0
        assert get(HTTP_PORT, "one.test") == (200, "hello v3")
    finally:
        sh("docker", "image", "rm", "dockyard-testbed/router:upgrade", check=False)
