"""Real faults: cut SSH mid-deploy, kill HAProxy, restart dockerd, other apps deploying."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HTTP_PORT,
    app_containers,
    get,
    hello_config,
    port_proxies,
    restart_dockerd,
    router_identity,
    set_version,
    sh,
    soak,
    wait_answer,
    wait_retired,
)
from tests.helpers import dockyard
from tests.loadcheck import Load

pytestmark = pytest.mark.e2e


def ssh_processes(marker: str) -> list[int]:
    """PIDs of ssh clients (and their ControlMaster) whose command line mentions marker."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                argv = fh.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"ssh") and any(marker.encode() in a for a in argv):
            pids.append(int(entry))
    return pids


@pytest.mark.soak
def test_ssh_killed_at_random_points_never_drops_a_request(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="cut")
    assert dockyard("-c", str(cfg), "deploy", timeout=300).returncode == 0
    rng = random.Random(20261128)
    runtime = tempfile.mkdtemp(prefix="dyk-", dir="/tmp")  # this test's own ControlPath dir
    env = {**os.environ, "XDG_RUNTIME_DIR": runtime}
    killed_at = []
    with Load(HTTP_PORT, "cut.test", threads=4) as load:
        for i in range(soak(6)):
            set_version(cfg, "v2" if i % 2 == 0 else "v1")
            proc = subprocess.Popen([sys.executable, "-m", "dockyard", "-c", str(cfg), "deploy"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            delay = rng.uniform(0.2, 3.0)
            time.sleep(delay)
            victims = ssh_processes(runtime)
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed_at.append((round(delay, 2), len(victims)))
            proc.communicate(timeout=180)
            status, body = get(HTTP_PORT, "cut.test")
            assert status == 200 and body in ("hello v1", "hello v2"), (i, status, body)
        set_version(cfg, "v2")
        final = dockyard("-c", str(cfg), "deploy", timeout=300)
        assert final.returncode == 0, final.output
    assert load.report.failed == 0, f"{load.report.summary()} kills={killed_at}"
    assert get(HTTP_PORT, "cut.test") == (200, "hello v2")
    current = json.loads(dockyard("-c", str(cfg), "status", "--json").stdout)["current"]
    wait_retired("cut")
    assert {(c[1], f"v{c[2]}") for c in app_containers("cut")} == {("web", current)}
    assert any(n for _, n in killed_at), killed_at  # the test really cut connections


@pytest.mark.exclusive
def test_router_comes_back_after_haproxy_kill_and_dockerd_restart(alone: None,
                                                                    tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello")
    assert dockyard("-c", str(cfg), "deploy", timeout=300).returncode == 0
    set_version(cfg, "v2")
    assert dockyard("-c", str(cfg), "deploy", timeout=300).returncode == 0

    pid = int(sh("docker", "inspect", "-f", "{{.State.Pid}}", "dockyard-haproxy").stdout)
    os.kill(pid, signal.SIGKILL)  # HAProxy's master process, from the host
    took = wait_answer(HTTP_PORT, "hello.test", "hello v2", seconds=30)
    assert took < 30

    restart_dockerd()
    wait_answer(HTTP_PORT, "hello.test", "hello v2", seconds=30)
    # and Dockyard still works against it
    set_version(cfg, "v1")
    run = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert run.returncode == 0, run.output


@pytest.mark.soak
def test_other_apps_keep_serving_while_one_deploys_and_one_comes_and_goes(
        clean: None, tmp_path: Path) -> None:
    alpha = hello_config(tmp_path / "alpha", name="steady")
    beta = hello_config(tmp_path / "beta", name="busy")
    # "arrives" sorts before "dockyard", the router's network in earlier versions: its
    # network coming and going moved the router's published ports (refused connections)
    gamma = hello_config(tmp_path / "gamma", name="arrives")
    for cfg in (alpha, beta):
        run = dockyard("-c", str(cfg), "deploy", timeout=300)
        assert run.returncode == 0, run.output
    router_before, proxies = router_identity(), port_proxies()
    with Load(HTTP_PORT, "steady.test", threads=4) as load:
        for i in range(soak(5)):
            last = "v2" if i % 2 == 0 else "v1"
            set_version(beta, last)
            run = dockyard("-c", str(beta), "deploy", timeout=300)
            assert run.returncode == 0, run.output
        run = dockyard("-c", str(gamma), "deploy", timeout=300)
        assert run.returncode == 0, run.output
        assert get(HTTP_PORT, "arrives.test") == (200, "hello v1")
        run = dockyard("-c", str(gamma), "remove", "--yes", timeout=300)
        assert run.returncode == 0, run.output
        assert get(HTTP_PORT, "arrives.test")[0] == 404
    assert load.report.failed == 0, load.report.summary()
    assert load.report.bodies == ["hello v1"]
    assert router_identity() == router_before  # never reloaded nor restarted
    assert port_proxies() == proxies  # the published ports never moved
    assert get(HTTP_PORT, "busy.test") == (200, f"hello {last}")
