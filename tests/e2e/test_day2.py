"""Day-2 commands: status, releases, logs, run, exec, processes, remove."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HTTP_PORT,
    STATE,
    app_containers,
    get,
    hello_config,
    set_version,
    wait_retired,
)
from tests.helpers import dockyard

pytestmark = pytest.mark.e2e

WORKER = '[processes]\nworker = ["sh", "-c", "echo worker $APP_VERSION started; exec sleep 3600"]\n'


def test_processes_status_releases_logs_run_exec_remove(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="day2", extra=WORKER)
    run = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert run.returncode == 0, run.output

    status = json.loads(dockyard("-c", str(cfg), "status", "--json").stdout)
    assert status["current"] == "v1"
    rows = {r["process"]: r for r in status["processes"]}
    assert rows["web"]["health"] == "UP" and rows["web"]["domains"] == ["day2.test"]
    assert rows["web"]["release"] == "v1" and rows["web"]["uptime"].startswith("Up")
    assert rows["worker"]["health"] == "running"
    table = dockyard("-c", str(cfg), "status")
    assert "day2-web-v1-" in table.stdout and "current release v1" in table.stdout

    releases = json.loads(dockyard("-c", str(cfg), "releases", "--json").stdout)
    assert releases[0]["name"] == "v1" and releases[0]["outcome"] == "live"
    assert releases[0]["image_id"].startswith("sha256:") and releases[0]["user"]
    assert releases[0]["config_hash"] and "created_at" in releases[0]

    logs = dockyard("-c", str(cfg), "logs", "worker", "-n", "5")
    assert logs.returncode == 0 and "worker v1 started" in logs.stdout

    one_off = dockyard("-c", str(cfg), "run", "--", "sh", "-c", 'echo "$GREETING"; exit 7')
    assert one_off.returncode == 7, one_off.output
    assert one_off.stdout == "hi from day2\n"  # stdout is exactly the command's output

    inside = dockyard("-c", str(cfg), "exec", "--", "cat", "/www/version")
    assert inside.returncode == 0 and inside.stdout == "v1\n", inside.output
    worker = dockyard("-c", str(cfg), "exec", "worker", "--", "sh", "-c", "echo $APP_VERSION; exit 3")
    assert worker.returncode == 3 and worker.stdout == "v1\n", worker.output
    missing = dockyard("-c", str(cfg), "exec", "nope", "--", "true")
    assert missing.returncode == 2 and "error[DY057]" in missing.stderr

    # a deploy replaces the worker too, only after the new one stayed up; its duration is
    # one number: the summary's, --json's and history's (and close to the wall clock's)
    set_version(cfg, "v2")
    started = time.monotonic()
    run = dockyard("-c", str(cfg), "deploy", timeout=300)
    wall = time.monotonic() - started
    assert run.returncode == 0, run.output
    summary = run.stderr.strip().splitlines()[-1]
    took = float(re.fullmatch(r"day2 v2 is live on http://day2\.test in (\d+\.\d)s", summary)
                 .group(1))  # type: ignore[union-attr]
    assert 0.5 * wall <= took <= wall, (took, wall)
    history = json.loads(dockyard("-c", str(cfg), "--json", "history").stdout)
    assert history[-1]["subcommand"] == "deploy" and history[-1]["seconds"] == took
    table = dockyard("-c", str(cfg), "history", "-n", "1").stdout
    assert f"{took:.1f}s" in table
    set_version(cfg, "v3")
    as_json = json.loads(dockyard("--json", "-c", str(cfg), "deploy", timeout=300).stdout)
    history = json.loads(dockyard("-c", str(cfg), "--json", "history").stdout)
    assert as_json["seconds"] == history[-1]["seconds"] and as_json["urls"] == ["http://day2.test"]
    wait_retired("day2")  # the old release is retired on the server, after the deploy
    assert sorted((c[1], c[2]) for c in app_containers("day2")) == [("web", "3"), ("worker", "3")]

    refused = dockyard("-c", str(cfg), "remove", input="")
    assert refused.returncode != 0 and "--yes" in refused.stderr
    removed = dockyard("-c", str(cfg), "remove", "--yes")
    assert removed.returncode == 0, removed.output
    assert app_containers("day2") == []
    assert get(HTTP_PORT, "day2.test")[0] == 404
    assert subprocess.run(["docker", "network", "inspect", "day2"],
                          capture_output=True).returncode != 0
    assert not (STATE / "apps" / "day2").exists()
    images = subprocess.run(["docker", "image", "ls", "-q", "dockyard/day2"],
                            capture_output=True, text=True).stdout.split()
    assert images == []


def test_a_process_that_dies_aborts_the_deploy(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="dies", extra=WORKER)
    assert dockyard("-c", str(cfg), "deploy", timeout=300).returncode == 0
    bad = hello_config(tmp_path / "bad", name="dies", version="v2",
                       extra='[processes]\nworker = ["sh", "-c", "echo crashing; exit 1"]\n')
    run = dockyard("-c", str(bad), "deploy", timeout=300)
    assert run.returncode == 1, run.output
    assert "error[DY053]" in run.stderr and "crashing" in run.stderr
    assert sorted((c[1], c[2]) for c in app_containers("dies")) == [("web", "1"), ("worker", "1")]
    assert get(HTTP_PORT, "dies.test") == (200, "hello v1")


def test_commands_before_any_deploy_say_so(clean: None, tmp_path: Path) -> None:
    cfg = hello_config(tmp_path / "hello", name="fresh")
    for args in (["rollback"], ["restart"], ["run", "--", "true"]):
        run = dockyard("-c", str(cfg), *args)
        assert run.returncode != 0 and "dockyard deploy" in run.stderr, run.output
        assert "Traceback" not in run.output


def test_deploy_an_existing_image_without_building(clean: None, tmp_path: Path) -> None:
    directory = tmp_path / "prebuilt"
    directory.mkdir()
    cfg = directory / "dockyard.toml"
    from tests.e2e.conftest import CREATED, PROXY, SSH_HOST

    cfg.write_text(f'[app]\nname = "prebuilt"\n[server]\nhost = "{SSH_HOST}"\n'
                   '[build]\nimage = "dockyard-testbed/hello:v2"\n'
                   '[web]\ndomains = ["prebuilt.test"]\ntls = false\n' + PROXY)
    CREATED.append(cfg)
    run = dockyard("-c", str(cfg), "--json", "deploy", timeout=300)
    assert run.returncode == 0, run.output
    result = json.loads(run.stdout)
    assert result["release"] == "v1" and result["timings"]["build"] < 30
    audit = [line for line in (STATE / "audit.log").read_text().splitlines()
             if '"app":"prebuilt"' in line]
    assert audit and not any("docker pull" in line for line in audit)  # present: not pulled
    assert get(HTTP_PORT, "prebuilt.test") == (200, "hello v2")
    # tls = false: still answered on the HTTPS port, with the router's default certificate
    import socket
    import ssl

    from tests.e2e.conftest import HTTPS_PORT

    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="prebuilt.test") as tls:
        served = tls.getpeercert(binary_form=True)
        tls.sendall(b"GET / HTTP/1.1\r\nHost: prebuilt.test\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    pem = (STATE / "router" / "etc" / "certs" / "default.pem").read_text()
    default = ssl.PEM_cert_to_DER_cert(pem[pem.index("-----BEGIN CERTIFICATE-----"):
                                           pem.index("-----END CERTIFICATE-----") + 25])
    assert served == default
    assert answer.startswith(b"HTTP/1.1 200") and answer.rstrip().endswith(b"hello v2")
    # the container(s) that serve are found by their role
    routers = subprocess.run(["docker", "ps", "--filter", "label=dockyard.role=router",
                              "--format", "{{.Names}}"], capture_output=True, text=True)
    assert routers.stdout.split() == ["dockyard-haproxy"]  # HAProxy; the holder: router-netns
    tagged = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", "dockyard/prebuilt:v1",
                             "dockyard-testbed/hello:v2"], capture_output=True, text=True)
    ids = tagged.stdout.split()
    assert len(ids) == 2 and ids[0] == ids[1]
