"""`server check`, `server setup` and the audit log, over real SSH and on the local engine."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import PROXY, STATE, SshLog, app_config, sh
from tests.helpers import dockyard

pytestmark = pytest.mark.e2e


def engine_version() -> str:
    return sh("docker", "version", "--format", "{{.Server.Version}}").stdout.strip()


@pytest.mark.exclusive
def test_server_check_over_ssh_reports_docker_version(alone: None, tmp_path: Path,
                                                      ssh_log: SshLog) -> None:
    cfg = app_config(tmp_path)
    run = dockyard("-c", str(cfg), "server", "check", "--json")
    assert run.returncode == 0, run.output
    report = json.loads(run.stdout)
    rows = {row["check"]: row for row in report["checks"]}
    assert rows["docker"]["level"] == "ok"
    assert engine_version() in rows["docker"]["detail"]
    assert rows["connection"]["detail"] == "SSH to root@127.0.0.1:2222 as root"
    assert rows["state dir"]["level"] == "warn"  # clean slate: not set up yet
    # the commands really went through the testbed's sshd
    logged = ssh_log.text()
    assert "docker version '--format={{.Server.Version}}'" in logged
    assert "cat /proc/net/tcp /proc/net/tcp6" in logged


def test_server_check_table_for_people(clean: None, tmp_path: Path) -> None:
    run = dockyard("-c", str(app_config(tmp_path, name="checker")), "server", "check")
    assert run.returncode == 0, run.output
    assert "docker" in run.stdout and engine_version() in run.stdout


@pytest.mark.exclusive
def test_server_check_local_engine_does_not_use_ssh(alone: None, tmp_path: Path,
                                                    ssh_log: SshLog) -> None:
    run = dockyard("-c", str(app_config(tmp_path, host="local")), "server", "check", "--json")
    assert run.returncode == 0, run.output
    rows = {row["check"]: row for row in json.loads(run.stdout)["checks"]}
    assert rows["connection"]["detail"].startswith("local engine")
    assert engine_version() in rows["docker"]["detail"]
    assert ssh_log.commands() == []


def test_unreachable_host_is_one_line_within_10s(tmp_path: Path) -> None:
    run = dockyard("-c", str(app_config(tmp_path, host="ssh://root@127.0.0.1:1")), "server",
                   "check")
    assert run.returncode != 0
    assert run.seconds < 10
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error[DY010]: cannot reach"), run.stderr
    assert "Traceback" not in run.output


@pytest.mark.exclusive
def test_port_held_by_another_program_blocks(alone: None, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        cfg = app_config(tmp_path, extra=f"[proxy]\nhttp_port = {port}\n")
        run = dockyard("-c", str(cfg), "server", "check", "--json")
    assert run.returncode == 1, run.output
    rows = {row["check"]: row for row in json.loads(run.stdout)["checks"]}
    assert rows["http port"]["level"] == "fail"
    assert "error[DY015]" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.exclusive
def test_dry_run_setup_changes_nothing_then_setup_creates_and_audits(
        alone: None, tmp_path: Path, ssh_log: SshLog) -> None:
    cfg = app_config(tmp_path)
    assert not STATE.exists()
    dry = dockyard("-c", str(cfg), "--dry-run", "server", "setup")
    assert dry.returncode == 0, dry.output
    assert "install -d -m 0750 /var/lib/dockyard /var/lib/dockyard/apps" in dry.stdout.splitlines()
    assert "# query: test -d /var/lib/dockyard" in dry.stdout
    assert not STATE.exists()
    assert not any("install -d" in c for c in ssh_log.commands())

    real = dockyard("server", "setup", "-c", str(cfg))
    assert real.returncode == 0, real.output
    assert STATE.is_dir() and (STATE / "apps").is_dir()
    assert oct(STATE.stat().st_mode)[-3:] == "750"
    entries = [json.loads(line) for line in (STATE / "audit.log").read_text().splitlines()]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["subcommand"] == "server setup" and entry["exit"] == 0
    assert entry["command"] == "install -d -m 0750 /var/lib/dockyard /var/lib/dockyard/apps"
    assert set(entry) >= {"time", "user", "invocation", "duration_ms"}
    # the change and its audit line travelled in one SSH command (no extra round trip)
    assert sum("install -d -m 0750" in c and "audit.log" in c for c in ssh_log.commands()) == 1

    again = dockyard("server", "setup", "-c", str(cfg))
    assert again.returncode == 0 and "already exists" in again.output
    assert len((STATE / "audit.log").read_text().splitlines()) == 1  # nothing changed: no entry


@pytest.mark.exclusive
def test_verbose_shows_each_command_with_its_duration(alone: None, tmp_path: Path) -> None:
    run = dockyard("-v", "-c", str(app_config(tmp_path)), "server", "setup")
    assert run.returncode == 0, run.output
    assert any("install -d -m 0750" in line and line.rstrip().endswith("s)")
               for line in run.stderr.splitlines()), run.stderr


def test_host_key_is_accepted_once_then_pinned(clean: None, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "cfg"),
           "XDG_RUNTIME_DIR": str(home / "run")}
    cfg = app_config(tmp_path, name="hostkey")
    first = dockyard("-c", str(cfg), "server", "check", env=env)
    assert first.returncode == 0, first.output
    known = home / "cfg" / "dockyard" / "known_hosts"
    # accept-new wrote it to Dockyard's own file (hashed or not, ssh-keygen finds it)
    assert sh("ssh-keygen", "-F", "[127.0.0.1]:2222", "-f", str(known), check=False).returncode == 0

    # a different key for the same host: the connection is refused with a clear error
    other = tmp_path / "otherkey"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other))
    fake = " ".join(Path(f"{other}.pub").read_text().split()[:2])
    known.write_text(f"[127.0.0.1]:2222 {fake}\n")
    started = time.monotonic()
    changed = dockyard("-c", str(cfg), "server", "check", env=env)
    assert changed.returncode != 0
    assert changed.stderr.startswith("error[DY011]: the host key of root@127.0.0.1:2222 has "
                                     "changed"), changed.stderr
    assert "ssh-keygen -R" in changed.stderr and time.monotonic() - started < 10
    assert len(changed.stderr.strip().splitlines()) <= 3


@pytest.mark.exclusive
def test_proxy_mismatch_shows_in_check(alone: None, tmp_path: Path) -> None:
    cfg = app_config(tmp_path, extra=PROXY)
    assert dockyard("-c", str(cfg), "router", "apply", "--yes").returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    cfg2 = app_config(other, name="blog", extra="[proxy]\nhttp_port = 18081\n")
    run = dockyard("-c", str(cfg2), "server", "check", "--json")
    assert run.returncode == 1
    rows = {row["check"]: row for row in json.loads(run.stdout)["checks"]}
    assert rows["proxy settings"]["level"] == "fail"
    assert "18080" in rows["proxy settings"]["detail"]
