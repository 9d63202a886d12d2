"""Day two on one server (issue 14): scheduled jobs run by the server alone, notifications,
a second copy of the app beside the first (destinations), resource limits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HTTP_PORT,
    STATE,
    SshLog,
    bridge_gateway,
    clean_app,
    get,
    hello_config,
    set_version,
    zd_probe,
)
from tests.helpers import dockyard

pytestmark = pytest.mark.e2e



class Receiver:
    """A webhook receiver: every JSON body POSTed to it, in order."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                bodies.append(json.loads(data))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        # the host as the server's containers reach it (Docker's default bridge): the laptop
        # and the server's cron container alike send here
        gateway = bridge_gateway()
        self.server = ThreadingHTTPServer((gateway, 0), Handler)
        self.url = f"http://{gateway}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[str]:
        return [str(b["event"]) for b in self.bodies]

    def wait_for(self, event: str, seconds: float) -> dict[str, object]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for body in self.bodies:
                if body["event"] == event:
                    return body
            time.sleep(0.5)
        raise AssertionError(f"no {event} within {seconds}s; got {self.events()}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def job_containers(app: str, job: str) -> list[str]:
    out = subprocess.run(["docker", "ps", "-q", "--filter", f"label=dockyard.cron={app}/{job}"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return out.split()


def cron_diagnostics(app: str) -> str:
    """What the cron container said and what the runs left, for an assertion's message."""
    logs = subprocess.run(["docker", "logs", "--tail=20", f"{app}-cron"], capture_output=True,
                          text=True, timeout=30)
    runs = sorted(str(p) for p in (STATE / "apps" / app / "cron").rglob("*"))
    return f"{logs.stdout}{logs.stderr}\n{runs}"


JOBS = """
[cron.tick]
schedule = "* * * * *"
command = ["sh", "-c", "echo tick $GREETING; sleep 25; echo done"]
timeout = "2m"
[cron.broken]
schedule = "@hourly"
command = ["sh", "-c", "echo about to fail; exit 3"]
"""


def test_jobs_run_on_the_server_alone_and_failures_are_notified(
        clean: None, tmp_path: Path, receiver: Receiver) -> None:
    app = "ticker"
    notify = f'[notify]\nwebhook = "{receiver.url}"\ntimeout = "3s"\n'
    cfg = hello_config(tmp_path / app, name=app, extra=JOBS + notify)
    deployed = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert deployed.returncode == 0, deployed.stderr
    # the laptop's events: started, then succeeded, with the documented body
    started = receiver.wait_for("deploy.started", 10)
    done = receiver.wait_for("deploy.succeeded", 10)
    assert receiver.events().index("deploy.started") < receiver.events().index("deploy.succeeded")
    assert {"event", "app", "host", "time", "user", "source", "dockyard"} <= set(done)
    assert done["app"] == app and done["release"] == "v1" and started["source"] == "laptop"

    # a failing job, started now by hand: its output streams here, and the server notifies
    ran = dockyard("-c", str(cfg), "cron", "run", "broken", timeout=120)
    assert ran.returncode == 3 and "about to fail" in ran.stdout, (ran.stdout, ran.stderr)
    failed = receiver.wait_for("cron.failed", 20)
    assert failed["source"] == "server" and "broken" in str(failed["message"])

    # no dockyard command from here on until the first tick ran: the server alone runs it
    # (the testbed's sshd logs every command: none names this app meanwhile); a deploy
    # during a run neither stops it nor starts a second one
    quiet = SshLog()
    deadline = time.monotonic() + 130
    while not job_containers(app, "tick"):
        assert time.monotonic() < deadline, ("tick never started", cron_diagnostics(app))
        time.sleep(0.5)
    assert not [c for c in quiet.commands() if app in c], quiet.commands()
    first = job_containers(app, "tick")
    set_version(cfg, "v2")
    during = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert during.returncode == 0, during.stderr
    assert job_containers(app, "tick") == first  # the run goes on, alone
    index = STATE / "apps" / app / "cron" / "runs" / "tick" / "index"
    quiet = SshLog()  # and the second run, after that deploy: no SSH session either
    deadline = time.monotonic() + 150
    most = 0
    while not (index.exists() and len(index.read_text().splitlines()) >= 2):
        assert time.monotonic() < deadline, cron_diagnostics(app)
        most = max(most, len(job_containers(app, "tick")))
        time.sleep(1)
    assert most <= 1  # never two runs at once
    runs = [line.split("\t") for line in index.read_text().splitlines()]
    assert runs[0][1] == "0" and runs[0][3] == "v1", runs  # the first kept its release
    assert runs[1][3] == "v2", runs  # the next one ran the release live when it started
    assert not [c for c in quiet.commands() if app in c], quiet.commands()

    listed = dockyard("-c", str(cfg), "--json", "cron", "list")
    assert listed.returncode == 0, listed.stderr
    jobs = {j["name"]: j for j in json.loads(listed.stdout)["jobs"]}
    assert len(jobs["tick"]["runs"]) >= 2 and jobs["tick"]["last_run"]["result"] == "ok"
    assert jobs["tick"]["next_run"] and jobs["broken"]["last_run"]["exit"] == 3
    table = dockyard("-c", str(cfg), "cron", "list")
    assert "tick" in table.stdout and "failed (exit 3)" in table.stdout, table.stdout
    logs = dockyard("-c", str(cfg), "cron", "logs", "tick")
    assert "tick hi from ticker" in logs.stdout and "done" in logs.stdout, logs.stdout

    # a deploy that fails is notified with its error
    text = cfg.read_text()
    cfg.write_text(text + '[release]\ncommand = ["sh", "-c", "exit 4"]\n')
    bad = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert bad.returncode != 0
    failed_deploy = receiver.wait_for("deploy.failed", 10)
    assert failed_deploy["error"] == "DY052", failed_deploy
    cfg.write_text(text)


def timed_lines(*args: str, timeout: float = 300) -> tuple[int, list[tuple[float, str]]]:
    """Run dockyard; each stderr line with the moment it arrived (stderr is line-buffered)."""
    proc = subprocess.Popen([sys.executable, "-m", "dockyard", *args], text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "200"})
    assert proc.stderr is not None
    lines: list[tuple[float, str]] = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stderr:
            lines.append((time.monotonic(), line.rstrip("\n")))
    finally:
        timer.cancel()
    return proc.wait(), lines


def test_a_dead_receiver_slows_a_deploy_by_at_most_its_timeout(
        clean: None, tmp_path: Path) -> None:
    # a receiver that takes the connection and never answers
    dead = socket.socket()
    gateway = bridge_gateway()
    dead.bind((gateway, 0))
    dead.listen(16)
    port = dead.getsockname()[1]
    try:
        cfg = hello_config(tmp_path / "deaf", name="deaf")
        first = dockyard("-c", str(cfg), "deploy", timeout=300)
        assert first.returncode == 0, first.stderr
        cfg.write_text(cfg.read_text() + f'[notify]\nwebhook = "http://{gateway}:{port}/"\n'
                       'timeout = "3s"\n')
        code, lines = timed_lines("-c", str(cfg), "-v", "deploy")
        text = "\n".join(line for _, line in lines)
        assert code == 0, text[-3000:]
        assert "notify: deploy.started to the webhook: failed: TimeoutError" in text
        said = [line for line in text.splitlines()
                if line.startswith("notify: deploy.succeeded to the webhook: ")]
        assert said and ("no answer within 3s" in said[0] or "failed" in said[0]), said
        # what the receiver costs: from the deploy's last line to the notifications' report
        # (measured here, as the lines arrive: the command's whole wall clock also counts an
        # interpreter start and an SSH connection, which take seconds on a busy machine)
        first = next(i for i, (_, line) in enumerate(lines) if line.startswith("notify: "))
        waited = lines[first][0] - lines[first - 1][0]
        print(f"waited {waited:.2f}s for a dead receiver (timeout 3s) after "
              f"{lines[first - 1][1]!r}")
        assert 2.5 < waited < 3 + 1.5, (waited, text[-3000:])
    finally:
        dead.close()


def test_a_staging_destination_runs_beside_production(clean: None, tmp_path: Path) -> None:
    # a worker that outgrows its memory limit (busybox tail keeps 50 MB) once it is up (20 s:
    # after every deploy below checked that it stays up)
    hog = ('[processes.hog]\ncommand = ["sh", "-c", "sleep 20; head -c 60000000 /dev/zero | '
           'tail -c 50000000 > /dev/null || exit 1; sleep 3600"]\nmemory = "16m"\n')
    cfg = hello_config(tmp_path / "shop", name="shop", web='memory = "64m"\ncpus = 0.5\n',
                       extra=hog)
    (tmp_path / "shop" / "dockyard.staging.toml").write_text(
        '[web]\ndomains = ["staging.shop.test"]\n[env]\nGREETING = "hi from staging"\n')
    for args in (("deploy",), ("-d", "staging", "deploy"), ("deploy",)):
        run = dockyard("-c", str(cfg), *args, timeout=300)
        assert run.returncode == 0, (args, run.stderr)
    assert get(HTTP_PORT, "shop.test", "/cgi-bin/env?GREETING")[1].count("hi from shop") == 1
    assert "hi from staging" in get(HTTP_PORT, "staging.shop.test", "/cgi-bin/env?GREETING")[1]
    prod = json.loads(dockyard("-c", str(cfg), "--json", "releases").stdout)
    staging = json.loads(dockyard("-c", str(cfg), "-d", "staging", "--json", "releases").stdout)
    assert len(prod) == 2 and len(staging) == 1, (prod, staging)
    # the limits are Docker's
    status = json.loads(dockyard("-c", str(cfg), "--json", "status").stdout)
    web = next(p for p in status["processes"] if p["process"] == "web")
    limits = subprocess.run(["docker", "inspect", "--format",
                             "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", web["container"]],
                            capture_output=True, text=True, check=True).stdout.split()
    assert limits == [str(64 << 20), "500000000"], limits
    # the kernel killed the worker for its memory: status and logs say so
    deadline = time.monotonic() + 90
    while True:
        status = json.loads(dockyard("-c", str(cfg), "--json", "status").stdout)
        hogs = [p for p in status["processes"] if p["process"] == "hog" and p["release"] == "v2"]
        if any(p["memory_killed"] for p in hogs):
            break
        assert time.monotonic() < deadline, hogs
        time.sleep(2)
    assert "killed for exceeding its memory limit of 16m" in hogs[0]["health"], hogs
    logs = dockyard("-c", str(cfg), "logs", "hog")
    assert "killed for exceeding its memory limit of 16m" in logs.stderr, logs.output
    removed = dockyard("-c", str(cfg), "-d", "staging", "remove", "--yes")
    clean_app("shop-staging")  # the fixture knows the file, not its copy's name
    assert removed.returncode == 0, removed.stderr


def test_three_replicas_deploy_under_load_and_prune_keeps_what_rollback_needs(
        clean: None, tmp_path: Path) -> None:
    app = "trio"
    cfg = hello_config(tmp_path / app, name=app, web="replicas = 3\n",
                       extra="keep_releases = 2\n")  # still under [deploy]
    first = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert first.returncode == 0, first.stderr
    # three containers serve: each answers with its own hostname
    served = {get(HTTP_PORT, f"{app}.test", "/cgi-bin/env?HOSTNAME")[1] for _ in range(30)}
    assert len(served) == 3, served
    # three deploys under the reference load (GETs and POSTs, keep-alive and new connections)
    loop = (f'for v in v2 v1 v2; do sed -i "s/VERSION = \\"v[0-9]*\\"/VERSION = \\"$v\\"/" '
            f'{cfg} && {sys.executable} -m dockyard -c {cfg} deploy >>{tmp_path}/deploys.log '
            '2>&1 || exit 1; done')
    probe = subprocess.run([*zd_probe(), "--url", f"http://127.0.0.1:{HTTP_PORT}/cgi-bin/env",
                            "--host", f"{app}.test", "--post", "--max-seconds", "300", "--",
                            "sh", "-c", loop], capture_output=True, text=True, timeout=400)
    data = json.loads(probe.stdout.strip().splitlines()[-1])
    print(f"3 deploys of 3 replicas: {data['ok']} ok, {data['failed']} failed, longest gap "
          f"{data['max_gap_s']}s")
    assert data["command_exit"] == 0, (tmp_path / "deploys.log").read_text()[-3000:]
    assert data["failed"] == 0, data
    status = json.loads(dockyard("-c", str(cfg), "--json", "status").stdout)
    webs = [p for p in status["processes"] if p["process"] == "web" and p["release"] == "v4"]
    assert len(webs) == 3, status["processes"]

    # what nothing needs: a gone app's image, a stopped leftover container
    subprocess.run(["docker", "tag", f"dockyard/{app}:v4", "dockyard/trio-gone:v1"], check=True)
    subprocess.run(["docker", "run", "--name", f"{app}-leftover", f"--label=dockyard.app={app}",
                    "--label=dockyard.process=web", "--label=dockyard.release=1",
                    "--entrypoint", "true", "dockyard-testbed/tools"], check=True)
    try:
        listed = dockyard("-c", str(cfg), "--dry-run", "server", "prune")
        assert listed.returncode == 0, listed.stderr
        assert "would remove image dockyard/trio-gone:v1" in listed.output, listed.output
        assert f"would remove container {app}-leftover" in listed.output, listed.output
        assert f"dockyard/{app}:v4" not in listed.output and f"{app}:v3" not in listed.output
        pruned = dockyard("-c", str(cfg), "server", "prune")
        assert pruned.returncode == 0 and "removed image dockyard/trio-gone:v1" in pruned.output
        gone = subprocess.run(["docker", "image", "inspect", "dockyard/trio-gone:v1"],
                              capture_output=True, text=True)
        assert gone.returncode != 0
        # the kept release still rolls back
        back = dockyard("-c", str(cfg), "rollback", timeout=300)
        assert back.returncode == 0, back.stderr
        assert get(HTTP_PORT, f"{app}.test") == (200, "hello v1")
        report = dockyard("-c", str(cfg), "--json", "server", "status")
        apps = {a["name"]: a for a in json.loads(report.stdout)["apps"]}
        assert apps[app]["release"] == "v5" and apps[app]["replicas"]["web"] >= 3, apps[app]
    finally:
        subprocess.run(["docker", "rm", "-f", f"{app}-leftover"], capture_output=True)
        subprocess.run(["docker", "image", "rm", "dockyard/trio-gone:v1"], capture_output=True)
