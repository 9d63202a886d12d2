"""Deploys over SSH through the real router, under load: zero failed requests, or no change."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HTTP_PORT,
    app_containers,
    get,
    hello_config,
    router_identity,
    set_version,
    soak,
    wait_retired,
)
from tests.helpers import dockyard
from tests.loadcheck import Load

pytestmark = pytest.mark.e2e


def deploy_ok(cfg: Path, *args: str) -> None:
    run = dockyard("-c", str(cfg), *args, timeout=300)
    assert run.returncode == 0, run.output


@pytest.mark.soak
def test_deploys_rollbacks_and_restarts_under_load(clean: None, tmp_path: Path) -> None:
    """Counts grow with DOCKYARD_SOAK (bench/soak: 20 deploys, 5 rollbacks, 5 restarts)."""
    deploys, rollbacks, restarts = soak(4), soak(2), soak(2)
    cfg = hello_config(tmp_path / "soak", name="soak")
    first = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert first.returncode == 0, first.output
    assert "soak v1 is live on http://soak.test in " in first.stderr
    assert get(HTTP_PORT, "soak.test") == (200, "hello v1")
    assert get(HTTP_PORT, "soak.test", "/cgi-bin/env?GREETING") == (200, "hi from soak")
    assert get(HTTP_PORT, "nobody.test")[0] == 404
    router_before = router_identity()

    with Load(HTTP_PORT, "soak.test", threads=4) as load:
        for i in range(deploys):
            version = "v2" if i % 2 == 0 else "v1"
            set_version(cfg, version)
            deploy_ok(cfg, "deploy")
            assert get(HTTP_PORT, "soak.test") == (200, f"hello {version}")
        for _ in range(rollbacks):
            before = get(HTTP_PORT, "soak.test")[1]
            deploy_ok(cfg, "rollback")
            after = get(HTTP_PORT, "soak.test")[1]
            assert after != before  # the previous release alternates v1/v2
        for _ in range(restarts):
            deploy_ok(cfg, "restart")
    report = load.report
    assert report.failed == 0, report.summary()
    assert report.ok > 200
    assert report.bodies[0] == "hello v1" and len(set(report.bodies)) == 2
    assert router_identity() == router_before  # never restarted, never reloaded

    releases = json.loads(dockyard("-c", str(cfg), "releases", "--json").stdout)
    assert releases[0]["current"] and releases[0]["kind"] == "rollback"
    assert len(releases) == 1 + deploys + rollbacks
    # once the last retirement ends, only the current release's containers remain
    wait_retired("soak")
    names = app_containers("soak")
    assert len(names) == 1 and names[0][1] == "web"
    # images beyond keep_releases (5) are pruned, on the server, after each deploy returned
    deadline = time.monotonic() + 30
    while True:
        tags = set(subprocess.run(["docker", "image", "ls", "dockyard/soak", "--format",
                                   "{{.Tag}}"], capture_output=True, text=True).stdout.split())
        if len(tags) <= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(tags) <= 6, tags


def test_unhealthy_release_changes_nothing(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="sick")
    deploy_ok(cfg, "deploy")
    broken = hello_config(tmp_path / "broken", name="sick", version="v2",
                          web='healthcheck = "/nope"\nhealthcheck_give_up = "4s"\n')
    with Load(HTTP_PORT, "sick.test", threads=4) as load:
        run = dockyard("-c", str(broken), "deploy", timeout=300)
    assert run.returncode == 1, run.output
    assert "error[DY051]" in run.stderr and "did not pass its health check" in run.stderr
    assert "Traceback" not in run.output
    assert load.report.failed == 0, load.report.summary()
    assert load.report.bodies == ["hello v1"]
    assert get(HTTP_PORT, "sick.test") == (200, "hello v1")
    assert [c[2] for c in app_containers("sick")] == ["1"]  # nothing of release 2 left
    releases = json.loads(dockyard("-c", str(cfg), "releases", "--json").stdout)
    assert releases[0]["outcome"] == "failed" and releases[1]["current"]


def test_failing_release_command_starts_nothing(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="migrate")
    deploy_ok(cfg, "deploy")
    failing = hello_config(tmp_path / "failing", name="migrate", version="v2",
                           extra='[release]\ncommand = ["sh", "-c", "echo migrating; exit 3"]\n')
    run = dockyard("-c", str(failing), "deploy", timeout=300)
    assert run.returncode == 1, run.output
    assert "error[DY052]: the release command failed (exit 3)" in run.stderr
    assert "migrating" in run.stderr
    assert [c[2] for c in app_containers("migrate")] == ["1"]
    assert get(HTTP_PORT, "migrate.test") == (200, "hello v1")


def test_release_command_runs_with_env(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="relenv", extra=(
        '[release]\ncommand = ["sh", "-c", "echo \\"release sees: $GREETING\\""]\n'))
    run = dockyard("-v", "-c", str(cfg), "deploy", timeout=300)
    assert run.returncode == 0, run.output
    assert "release sees: hi from relenv" in run.stderr


def test_two_deploys_at_once_one_is_refused(clean: None, tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = hello_config(tmp_path / "hello", name="twice")
    deploy_ok(cfg, "deploy")
    set_version(cfg, "v2")
    procs = [subprocess.Popen([sys.executable, "-m", "dockyard", "-c", str(cfg), "deploy"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 1], results
    refused = next(r for r in results if r[2] == 1)
    assert "error[DY050]: app twice on root@127.0.0.1:2222 is locked by" in refused[1]
    assert "(deploy) since" in refused[1]
    status = json.loads(dockyard("-c", str(cfg), "lock", "status", "--json").stdout)
    assert status["held"] is False  # released when the winner finished
