"""`router apply`: server-wide settings change only on purpose, and the router follows."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dockyard.config.model import ProxyConfig
from dockyard.router import container
from tests.e2e.conftest import HTTP_PORT, PROXY, STATE, app_config, sh
from tests.helpers import dockyard

pytestmark = pytest.mark.e2e


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def wait_for(url: str, status: int, seconds: float = 15) -> str:
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            code, body = get(url)
            if code == status:
                return body
            last = code
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {seconds}s (last: {last})")


def test_apply_records_settings_then_recreates_the_router_on_port_change(
        clean: None, tmp_path: Path) -> None:
    cfg = app_config(tmp_path, extra=PROXY)
    dry = dockyard("-c", str(cfg), "--dry-run", "router", "apply")
    assert dry.returncode == 0, dry.output
    assert not (STATE / "proxy.json").exists()

    first = dockyard("-c", str(cfg), "router", "apply", "--yes")
    assert first.returncode == 0, first.output
    saved = json.loads((STATE / "proxy.json").read_text())
    assert saved["http_port"] == HTTP_PORT and saved["router_image"] == "dockyard-testbed/router"

    unchanged = dockyard("-c", str(cfg), "router", "apply", "--yes")
    assert "nothing to do" in unchanged.output

    # start a router with these settings (as deploy will), then move its http port
    settings = ProxyConfig.model_validate(saved)
    for cmd in container.recreate(settings):
        subprocess.run(list(cmd.argv), input=cmd.stdin, capture_output=True, check=False)
    assert "No app" in wait_for(f"http://127.0.0.1:{HTTP_PORT}/", 404)
    started_before = sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "dockyard-router").stdout

    moved = app_config(tmp_path, extra=PROXY.replace(f"http_port = {HTTP_PORT}", "http_port = 18081"))
    refused = dockyard("-c", str(moved), "router", "apply", input="")
    assert refused.returncode != 0 and "--yes" in refused.stderr  # no terminal, no --yes
    applied = dockyard("-c", str(moved), "router", "apply", "--yes")
    assert applied.returncode == 0, applied.output
    assert "http_port: 18080 -> 18081" in applied.stderr
    assert "recreated" in applied.output
    assert "No app" in wait_for("http://127.0.0.1:18081/", 404)
    assert sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "dockyard-router").stdout != started_before
    audit = (STATE / "audit.log").read_text()
    assert "docker rm -f dockyard-router" in audit and "router apply" in audit

    # a tools_image-only change records the setting and leaves the router alone
    started = sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "dockyard-router").stdout
    tools = app_config(tmp_path, extra='[proxy]\ntools_image = "dockyard-testbed/tools:other"\n')
    assert dockyard("-c", str(tools), "router", "apply", "--yes").returncode == 0
    assert sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "dockyard-router").stdout == started
    assert json.loads((STATE / "proxy.json").read_text())["http_port"] == 18081
