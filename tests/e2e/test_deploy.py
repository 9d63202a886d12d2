"""Deploys over SSH through the real router, under load: zero failed requests, or no change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HTTP_PORT,
    STATE,
    app_containers,
    get,
    hello_config,
    router_identity,
    set_version,
)
from tests.helpers import dockyard
from tests.loadcheck import Load

pytestmark = pytest.mark.e2e


def deploy_ok(cfg: Path, *args: str) -> None:
    run = dockyard("-c", str(cfg), *args, timeout=300)
    assert run.returncode == 0, run.output


def test_first_deploy_then_20_deploys_5_rollbacks_5_restarts_under_load(
        clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello")
    first = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert first.returncode == 0, first.output
    assert "hello v1 is live on hello.test" in first.stderr
    assert get(HTTP_PORT, "hello.test") == (200, "hello v1")
    assert get(HTTP_PORT, "hello.test", "/cgi-bin/env?GREETING") == (200, "hi from hello")
    assert get(HTTP_PORT, "nobody.test")[0] == 404
    router_before = router_identity()

    with Load(HTTP_PORT, "hello.test", threads=4) as load:
        expected = ["hello v1"]
        for i in range(20):
            version = "v2" if i % 2 == 0 else "v1"
            set_version(cfg, version)
            deploy_ok(cfg, "deploy")
            assert get(HTTP_PORT, "hello.test") == (200, f"hello {version}")
            expected.append(f"hello {version}")
        for _ in range(5):
            before = get(HTTP_PORT, "hello.test")[1]
            deploy_ok(cfg, "rollback")
            after = get(HTTP_PORT, "hello.test")[1]
            assert after != before  # the previous release alternates v1/v2
        for _ in range(5):
            deploy_ok(cfg, "restart")
    report = load.report
    assert report.failed == 0, report.summary()
    assert report.ok > 500
    # the version seen switched with every deploy (mixed answers only during each switch)
    final_bodies = [b for i, b in enumerate(report.bodies)
                    if i + 1 == len(report.bodies) or report.bodies[i + 1] != b]
    assert final_bodies[0] == "hello v1" and len(set(report.bodies)) == 2
    assert router_identity() == router_before  # never restarted, never reloaded

    releases = json.loads(dockyard("-c", str(cfg), "releases", "--json").stdout)
    assert releases[0]["current"] and releases[0]["kind"] == "rollback"
    assert len(releases) == 26
    # only the current release's containers remain
    names = app_containers("hello")
    assert len(names) == 1 and names[0][1] == "web"
    # images beyond keep_releases (5) were pruned
    tags = {line for line in __import__("subprocess").run(
        ["docker", "image", "ls", "dockyard/hello", "--format", "{{.Tag}}"],
        capture_output=True, text=True).stdout.split()}
    assert len(tags) <= 6


def test_unhealthy_release_changes_nothing(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello")
    deploy_ok(cfg, "deploy")
    broken = hello_config(tmp_path / "broken", version="v2",
                          web='healthcheck = "/nope"\nhealthcheck_give_up = "4s"\n')
    with Load(HTTP_PORT, "hello.test", threads=4) as load:
        run = dockyard("-c", str(broken), "deploy", timeout=300)
    assert run.returncode == 1, run.output
    assert "error[DY051]" in run.stderr and "did not pass its health check" in run.stderr
    assert "Traceback" not in run.output
    assert load.report.failed == 0, load.report.summary()
    assert load.report.bodies == ["hello v1"]
    assert get(HTTP_PORT, "hello.test") == (200, "hello v1")
    assert [c[2] for c in app_containers("hello")] == ["1"]  # nothing of release 2 left
    releases = json.loads(dockyard("-c", str(cfg), "releases", "--json").stdout)
    assert releases[0]["outcome"] == "failed" and releases[1]["current"]


def test_failing_release_command_starts_nothing(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello")
    deploy_ok(cfg, "deploy")
    failing = hello_config(tmp_path / "failing", version="v2",
                           extra='[release]\ncommand = ["sh", "-c", "echo migrating; exit 3"]\n')
    run = dockyard("-c", str(failing), "deploy", timeout=300)
    assert run.returncode == 1, run.output
    assert "error[DY052]: the release command failed (exit 3)" in run.stderr
    assert "migrating" in run.stderr
    assert [c[2] for c in app_containers("hello")] == ["1"]
    assert get(HTTP_PORT, "hello.test") == (200, "hello v1")


def test_release_command_runs_with_env(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", extra=(
        '[release]\ncommand = ["sh", "-c", "echo \\"release sees: $GREETING\\""]\n'))
    run = dockyard("-v", "-c", str(cfg), "deploy", timeout=300)
    assert run.returncode == 0, run.output
    assert "release sees: hi from hello" in run.stderr


def test_dry_run_deploy_prints_every_change_and_changes_nothing(clean: None,
                                                               tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello")
    deploy_ok(cfg, "deploy")
    audit_before = (STATE / "audit.log").read_text()
    containers_before = app_containers("hello")
    set_version(cfg, "v2")
    run = dockyard("-c", str(cfg), "--dry-run", "deploy", timeout=300)
    assert run.returncode == 0, run.output
    lines = run.stdout.splitlines()
    changes = [line for line in lines if not line.startswith("#")]
    assert any(line.startswith("sh -c 'if docker buildx") and "< <build context:" in line
               for line in changes)
    assert any(line.startswith("docker run -d --name hello-web-v2-") for line in changes)
    assert any("router-api 'set server slot01/" in line and
               "addr <container address> port 8080'" in line for line in changes)
    order = [next(i for i, line in enumerate(changes) if word in line)
             for word in ("docker build", "docker run -d", "health down", "state ready",
                          "docker stop")]
    assert order == sorted(order), changes
    assert (STATE / "audit.log").read_text() == audit_before
    assert app_containers("hello") == containers_before
    assert get(HTTP_PORT, "hello.test") == (200, "hello v1")
    releases = json.loads(dockyard("-c", str(cfg), "releases", "--json").stdout)
    assert [r["name"] for r in releases] == ["v1"]


def test_dry_run_of_a_first_deploy_on_a_bare_server(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello")
    run = dockyard("-c", str(cfg), "--dry-run", "deploy", timeout=300)
    assert run.returncode == 0, run.output
    changes = [line for line in run.stdout.splitlines() if not line.startswith("#")]
    assert changes[0] == "install -d -m 0750 /var/lib/dockyard /var/lib/dockyard/apps"
    assert any(line.startswith("docker network create --label dockyard.app=hello hello")
               for line in changes)
    assert any(line.startswith("docker run -d --name dockyard-router") for line in changes)
    assert any("add map /usr/local/etc/haproxy/hosts.map hello.test slot01" in line
               for line in changes)
    assert not STATE.exists() and app_containers("hello") == []


def test_two_deploys_at_once_one_is_refused(clean: None, tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = hello_config(tmp_path / "hello")
    deploy_ok(cfg, "deploy")
    set_version(cfg, "v2")
    procs = [subprocess.Popen([sys.executable, "-m", "dockyard", "-c", str(cfg), "deploy"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 1], results
    refused = next(r for r in results if r[2] == 1)
    assert "error[DY050]: app hello on root@127.0.0.1:2222 is locked by" in refused[1]
    assert "(deploy) since" in refused[1]
    status = json.loads(dockyard("-c", str(cfg), "lock", "status", "--json").stdout)
    assert status["held"] is False  # released when the winner finished
