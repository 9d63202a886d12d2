"""Environment and secrets: never leaked, applied with zero downtime, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HTTP_PORT,
    STATE,
    SshLog,
    get,
    hello_config,
    sh,
    soak,
)
from tests.e2e.test_faults import ssh_processes
from tests.helpers import dockyard
from tests.loadcheck import Load

pytestmark = pytest.mark.e2e


class CmdlineSampler:
    """Reads every process's command line, over and over, while a command runs."""

    def __init__(self, needle: str) -> None:
        self.needle = needle.encode()
        self.hits: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CmdlineSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        deadline = time.monotonic() + 600
        while not self._stop.is_set() and time.monotonic() < deadline:
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if self.needle in data:
                    self.hits.append(data.replace(b"\0", b" ").decode(errors="replace"))
            self.samples += 1
            time.sleep(0.005)


def test_a_secret_never_leaks_and_the_app_sees_it(clean: None, tmp_path: Path,
                                                   ssh_log: SshLog) -> None:
    secret = "s3cr3t-" + secrets.token_hex(16)
    cfg = hello_config(tmp_path / "hello", name="secret")
    argv_log = tmp_path / "argv.jsonl"
    env = {"DOCKYARD_ARGV_LOG": str(argv_log)}
    printed: list[str] = []

    def run(*args: str, input: str | None = None) -> None:
        result = dockyard("-c", str(cfg), *args, env=env, input=input, timeout=300)
        printed.append(result.stdout + result.stderr)
        assert result.returncode == 0, result.output

    run("env", "set", "API_TOKEN", "-", input=secret + "\n")  # before the first deploy: stored
    with CmdlineSampler(secret) as sampler:
        run("-v", "--dry-run", "deploy")
        run("-v", "deploy")
        run("-v", "env", "set", "OTHER=1")  # a release with the secret in its env
        run("--dry-run", "env", "set", "API_TOKEN", "-", input=secret + "\n")
    for args in (["status"], ["status", "--json"], ["config"], ["env", "list"],
                 ["env", "list", "--json"], ["releases", "--json"], ["-v", "releases"]):
        run(*args)

    assert get(HTTP_PORT, "secret.test", "/cgi-bin/env?API_TOKEN")[1] == secret, "app lacks it"
    # where it must not be; a failure names the place, never the value
    places: dict[str, str] = {f"output of command {i}": t for i, t in enumerate(printed)}
    places["audit log"] = (STATE / "audit.log").read_text()
    places["remote argv (sshd log)"] = "\n".join(ssh_log.commands())
    places["local argv (runner)"] = argv_log.read_text()
    for image in sh("docker", "image", "ls", "dockyard/secret", "--format",
                    "{{.Repository}}:{{.Tag}}").stdout.split():
        layers = subprocess.run(["docker", "save", image], capture_output=True).stdout
        assert layers, image
        places[f"layers of {image}"] = layers.decode("latin-1")
        places[f"config of {image}"] = sh("docker", "image", "inspect", image).stdout
    for name in sh("docker", "ps", "-aq", "--filter", "label=dockyard.app=secret").stdout.split():
        places[f"labels of {name}"] = sh("docker", "inspect", "-f", "{{json .Config.Labels}}",
                                         name).stdout
    leaked = sorted(place for place, text in places.items() if secret in text)
    assert leaked == []
    assert sampler.samples > 10 and len(sampler.hits) == 0, "secret seen in a process argv"
    assert "API_TOKEN" in printed[-4]  # env list names it, masked
    assert "docker run" in places["remote argv (sshd log)"]
    assert "ssh" in places["local argv (runner)"]
    # on the server the secret lives only in 0600 files
    env_file = STATE / "apps" / "secret" / "env.server"
    assert oct(env_file.stat().st_mode)[-3:] == "600"
    for snapshot in (STATE / "apps" / "secret" / "env").iterdir():
        assert oct(snapshot.stat().st_mode)[-3:] == "600"

    revealed = dockyard("-c", str(cfg), "env", "list", "--reveal", "--json")
    shown = {r["key"]: r["value"] for r in json.loads(revealed.stdout)}["API_TOKEN"]
    assert shown == secret, "--reveal does not show the value"
    exported = dockyard("-c", str(cfg), "env", "export", "--reveal")
    assert f"API_TOKEN={secret}" in exported.stdout, "export lacks the value"
    assert dockyard("-c", str(cfg), "env", "export").returncode != 0  # needs --reveal


def test_env_set_and_rollback_under_load(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="envload")
    assert dockyard("-c", str(cfg), "deploy", timeout=300).returncode == 0
    path = "/cgi-bin/env?GREETING"
    assert get(HTTP_PORT, "envload.test", path) == (200, "hi from envload")
    with Load(HTTP_PORT, "envload.test", path=path, threads=4) as load:
        run = dockyard("-c", str(cfg), "env", "set", "GREETING=bonjour", timeout=300)
        assert run.returncode == 0, run.output
        assert get(HTTP_PORT, "envload.test", path) == (200, "bonjour")
        back = dockyard("-c", str(cfg), "rollback", timeout=300)
        assert back.returncode == 0, back.output
        assert get(HTTP_PORT, "envload.test", path) == (200, "hi from envload")
    assert load.report.failed == 0, load.report.summary()
    assert load.report.bodies[0] == "hi from envload" and "bonjour" in load.report.bodies
    assert load.report.bodies[-1] == "hi from envload"
    # the rollback restored the server's environment too
    listed = json.loads(dockyard("-c", str(cfg), "env", "list", "--reveal", "--json").stdout)
    assert {r["key"]: r["value"] for r in listed}["GREETING"] == "hi from envload"
    releases = json.loads(dockyard("-c", str(cfg), "releases", "--json").stdout)
    assert [r["kind"] for r in releases] == ["rollback", "env", "deploy"]

    # --no-restart stores only; status says so until the next deploy
    run = dockyard("-c", str(cfg), "env", "set", "GREETING=later", "--no-restart")
    assert run.returncode == 0 and "not applied" in run.stderr
    status = json.loads(dockyard("-c", str(cfg), "status", "--json").stdout)
    assert status["env"] == "env changed, not applied"
    assert get(HTTP_PORT, "envload.test", path) == (200, "hi from envload")
    assert dockyard("-c", str(cfg), "deploy", timeout=300).returncode == 0
    assert get(HTTP_PORT, "envload.test", path) == (200, "later")
    assert json.loads(dockyard("-c", str(cfg), "status", "--json").stdout)["env"] == "applied"

    unset = dockyard("-c", str(cfg), "env", "unset", "GREETING", timeout=300)
    assert unset.returncode == 0, unset.output
    # dockyard.toml's plain value shows again once the server's is gone
    assert get(HTTP_PORT, "envload.test", path) == (200, "hi from envload")


def kill_ssh(runtime: str) -> None:
    for pid in ssh_processes(runtime):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.soak
def test_a_cut_connection_never_leaves_half_an_env_file(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="envcut")
    env_file = STATE / "apps" / "envcut" / "env.server"
    versions = {}
    for name in ("a", "b"):
        versions[name] = f"BIG={name * 400_000}\nSMALL={name}\n"
    (tmp_path / "seed.env").write_text(versions["a"])
    seed = dockyard("-c", str(cfg), "env", "import", str(tmp_path / "seed.env"), "--no-restart",
                    timeout=120)
    assert seed.returncode == 0, seed.output
    assert env_file.read_text() == versions["a"]
    rng = random.Random(4)
    runtime = tempfile.mkdtemp(prefix="dye-", dir="/tmp")
    outcomes = []
    for i in range(soak(10)):
        name = "b" if i % 2 == 0 else "a"
        dotenv = tmp_path / f"{name}.env"
        dotenv.write_text(versions[name])
        proc = subprocess.Popen([sys.executable, "-m", "dockyard", "-c", str(cfg), "env",
                                 "import", str(dotenv), "--no-restart"],
                                env={**os.environ, "XDG_RUNTIME_DIR": runtime},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # the cut lands at a random point after the try's first command starts over the
        # master (a second ssh process; the first is the master dockyard opens while Python
        # imports), not after a guess at start-up time, which CI under load made miss every try
        started = time.monotonic()
        while (len(ssh_processes(runtime)) < 2 and proc.poll() is None
               and time.monotonic() - started < 60):
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.15))
        kill_ssh(runtime)
        proc.communicate(timeout=120)
        kill_ssh(runtime)  # the next try starts without a ControlMaster, so it can be cut early too
        content = env_file.read_text()
        assert content in versions.values(), f"try {i}: partial file ({len(content)} bytes)"
        outcomes.append(proc.returncode)
        leftovers = [p.name for p in env_file.parent.iterdir() if p.name.startswith("env.server.")]
        assert all(oct((env_file.parent / p).stat().st_mode)[-3:] == "600" for p in leftovers)
    assert set(outcomes) != {0}, "no try was interrupted: the test proves nothing"
