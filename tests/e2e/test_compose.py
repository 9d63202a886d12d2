"""A docker-compose file deployed as it is: examples/compose (web + worker + PostgreSQL +
Redis, the migration a one-shot service) under the reference load, against `docker-compose
up -d` on the same file for contrast; the file read as Debian's docker-compose 1.29 reads it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dockyard.compose.load import load
from tests.e2e.conftest import CREATED, HTTP_PORT, PROXY, SSH_HOST, get, sh, zd_probe
from tests.helpers import REPO, dockyard

pytestmark = pytest.mark.e2e

EXAMPLES = REPO / "examples"
APP = "composebook"
DOMAIN = "composebook.test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _compose_config(directory: Path, files: list[str], profiles: list[str],
                    env: dict[str, str]) -> dict[str, dict[str, object]]:
    """docker-compose config's merge of ``files``, read back by Dockyard's loader (1.29's
    config lists every service, whatever the profiles: the loader keeps the active ones)."""
    argv = ["docker-compose", "--project-directory", str(directory)]
    for f in files:
        argv += ["-f", str(directory / f)]
    for p in profiles:
        argv += ["--profile", p]
    done = subprocess.run([*argv, "config"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, cwd=directory)
    assert done.returncode == 0, done.stderr
    merged = directory / "merged.out.yml"
    merged.write_text(done.stdout)
    return load([merged], profiles, environ={}).services


FIELDS = ("image", "command", "entrypoint", "environment", "build", "ports", "volumes",
          "depends_on", "labels", "profiles", "user", "working_dir")


def _comparable(service: dict[str, object]) -> dict[str, object]:
    out = {k: service.get(k) for k in FIELDS if service.get(k) not in (None, [], {})}
    if isinstance(out.get("command"), str):
        out["command"] = shlex.split(str(out["command"]))
    for key in ("ports",):
        if key in out:  # compose prints published ports as numbers
            out[key] = sorted((p["target"], str(p["published"]), p.get("host_ip"))
                              for p in out[key])  # type: ignore[index, union-attr]
    if "volumes" in out:
        out["volumes"] = sorted((v["target"], v.get("source"), v.get("read_only"))
                                for v in out["volumes"])  # type: ignore[union-attr]
    return out


def test_files_profiles_and_variables_are_read_as_docker_compose_reads_them(
        tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".env").write_text("TAG=3.1\nSECRET=from-dotenv\n")
    (tmp_path / "docker-compose.yml").write_text(textwrap.dedent("""
        x-common: &common
          environment: {LOG: info, SECRET: "${SECRET}"}
        services:
          web:
            <<: *common
            build: {context: ./app, args: {TAG: "${TAG}"}}
            command: serve --port 8000
            ports: ["8000:8000", "127.0.0.1:9000:9000"]
            volumes: ["data:/data", "./static:/static:ro"]
            labels: {team: web}
          worker:
            <<: *common
            build: {context: ./app, args: {TAG: "${TAG}"}}
            command: ["work", "--queue", "${QUEUE:-default}"]
            depends_on: {web: {condition: service_started}}
          db:
            image: "postgres:${PG:-16}"
            volumes: [pg:/var/lib/postgresql/data]
          debug:
            image: busybox
            profiles: [debug]
        volumes: {data: {}, pg: {}}
        """))
    (tmp_path / "docker-compose.prod.yml").write_text(textwrap.dedent("""
        services:
          web:
            command: ["serve", "--port", "8000", "--workers", "4"]
            environment: [LOG=warning, EXTRA=1]
            ports: ["8443:8443"]
            volumes: ["data2:/data"]
            user: "1000"
          worker:
            entrypoint: ["/entry.sh"]
            working_dir: /srv
          metrics:
            image: "prom/statsd-exporter:${EXPORTER:-latest}"
            profiles: [metrics]
        volumes: {data2: {}}
        """))
    env = {"QUEUE": "mail", "EXPORTER": "v0.26"}
    files = ["docker-compose.yml", "docker-compose.prod.yml"]
    for profiles in ([], ["debug"], ["debug", "metrics"]):
        theirs = _compose_config(tmp_path, files, profiles, env)
        ours = load([tmp_path / f for f in files], profiles, {**os.environ, **env}).services
        assert sorted(ours) == sorted(theirs), profiles
        for name in ours:
            assert _comparable(ours[name]) == _comparable(theirs[name]), name


@pytest.mark.soak
def test_examples_compose_deploys_with_zero_downtime_and_follows_the_file(
        clean: None, tmp_path: Path) -> None:
    # a copy of the example (its code changes at every deploy), the testbed's images
    for name in ("compose", "guestbook"):
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    work = tmp_path / "compose"
    contrast_port = _free_port()
    env = {"POSTGRES_PASSWORD": "cb-pw-5d1f0a9e77", "PYTHON_IMAGE": "dockyard-testbed/python",
           "POSTGRES_IMAGE": "dockyard-testbed/postgres", "REDIS_IMAGE": "dockyard-testbed/redis",
           "APP_VERSION": "v1", "WEB_PORT": str(contrast_port)}
    cfg = work / "dockyard.toml"
    CREATED.append(cfg)
    init = dockyard("-c", str(cfg), "init", "--compose", "--host", SSH_HOST, env=env)
    assert init.returncode == 0, init.output
    for line in ("web: routed", "migrate: the release command", "worker: process",
                 "db: accessory (postgres", "cache: accessory (redis"):
        assert line in init.output, init.output
    text = cfg.read_text().replace('name = "compose"', f'name = "{APP}"')
    text = text.replace('domains = ["compose.localhost"]',
                        f'domains = ["{DOMAIN}"]\ntls = false\nhealthcheck_interval = "500ms"')
    text = text.replace('drain_timeout = "30s"', 'drain_timeout = "10s"\nstop_timeout = "5s"')
    cfg.write_text(text + PROXY)

    first = dockyard("-c", str(cfg), "deploy", env=env, timeout=600)
    assert first.returncode == 0, first.output[-4000:]
    assert env["POSTGRES_PASSWORD"] not in first.output
    status, page = get(HTTP_PORT, DOMAIN)
    assert status == 200 and "guestbook v1" in page and " visits" in page, page[:400]
    # the password reached the server as a secret, masked in env list, never in a label
    listed = dockyard("-c", str(cfg), "env", "list", env=env)
    assert "PGPASSWORD" in listed.output and env["POSTGRES_PASSWORD"] not in listed.output
    labels = sh("docker", "inspect", "-f", "{{json .Config.Labels}}", f"{APP}-db").stdout
    assert env["POSTGRES_PASSWORD"] not in labels
    for i in range(3):
        done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                               f"Host: {DOMAIN}", "-d", f"name=before{i}&message=kept",
                               f"http://127.0.0.1:{HTTP_PORT}/"], capture_output=True,
                              text=True, timeout=30)
        assert done.stdout == "201", done
    db_started = sh("docker", "inspect", "-f", "{{.State.StartedAt}}", f"{APP}-db").stdout

    # 5 deploys after code changes, under the reference probe (its POSTs write rows)
    workers = tmp_path / "workers.log"
    steps = []
    for version in range(2, 7):
        steps.append(
            f"echo '# change {version}' >> {shlex.quote(str(tmp_path / 'guestbook' / 'web.py'))}"
            f" && APP_VERSION=v{version} {shlex.quote(sys.executable)} -m dockyard -c "
            f"{shlex.quote(str(cfg))} deploy && docker ps --filter label=dockyard.app={APP} "
            f"--filter label=dockyard.process=worker --format '{{{{.Names}}}}' >> {workers}")
    probe = subprocess.run([*zd_probe(), "--url", f"http://127.0.0.1:{HTTP_PORT}/", "--host",
                            DOMAIN, "--post", "--threads", "4", "--max-seconds", "500", "--",
                            "sh", "-c", " && ".join(steps)], capture_output=True, text=True,
                           timeout=600, cwd=REPO, env={**os.environ, **env})
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    print(f"dockyard deploy x5 of the compose file: {result['ok']} ok, {result['failed']} "
          f"failed, longest gap {result['max_gap_s']}s")
    assert result["command_exit"] == 0, probe.stderr[-3000:]
    assert result["failed"] == 0 and result["ok"] > 50, (result, probe.stderr[-2000:])
    seen = workers.read_text().split()
    for n in range(2, 7):  # a new worker at every deploy
        assert any(w.startswith(f"{APP}-worker-v{n}-") for w in seen), (n, seen)
    assert sh("docker", "inspect", "-f", "{{.State.StartedAt}}", f"{APP}-db").stdout == \
        db_started  # never restarted by a deploy
    status, body = get(HTTP_PORT, DOMAIN, "/entries.json")
    names = [e["name"] for e in json.loads(body)]
    assert names[:3] == ["before0", "before1", "before2"] and len(names) > 3
    assert "guestbook v6" in get(HTTP_PORT, DOMAIN)[1]

    # the same file with `docker-compose up -d`, for contrast (its own project and port)
    contrast(work, env, contrast_port)

    # an edit of the compose file: a new variable, a new service, a stateful one removed
    compose = work / "docker-compose.yml"
    text = compose.read_text()
    text = text.replace("    REDIS_HOST: cache\n", "    REDIS_HOST: cache\n    NOTE: edited\n")
    text = text.replace("      cache: {condition: service_started}\n", "")
    start = text.index("  cache:\n")
    text = text[:start] + text[text.index("volumes:\n  db-data:"):]
    text = text.replace("  cache-data:\n", "")
    text = text.replace("services:\n", "services:\n  beat:\n    <<: *app\n    command: "
                        "[\"sh\", \"-c\", \"while sleep 1; do :; done\"]\n\n", 1)
    compose.write_text(text)
    edited = dockyard("-c", str(cfg), "deploy", env={**env, "APP_VERSION": "v7"}, timeout=300)
    assert edited.returncode == 0, edited.output[-4000:]
    assert (f"cache: no longer in docker-compose.yml; its container is removed, its volumes "
            f"are kept: {APP}-cache-data") in " ".join(edited.output.split()), edited.output
    assert sh("docker", "volume", "inspect", f"{APP}-cache-data", check=False).returncode == 0
    assert sh("docker", "inspect", f"{APP}-cache", check=False).returncode != 0
    running = sh("docker", "ps", "--filter", f"label=dockyard.app={APP}", "--format",
                 '{{.Label "dockyard.process"}}').stdout.split()
    assert "beat" in running and "worker" in running, running
    note = dockyard("-c", str(cfg), "run", "web", "--", "printenv", "NOTE", env=env)
    assert note.returncode == 0 and note.stdout.strip() == "edited", note.output
    logs = dockyard("-c", str(cfg), "logs", "worker", env=env)
    assert logs.returncode == 0 and "worker started" in logs.output, logs.output[-2000:]
    status, page = get(HTTP_PORT, DOMAIN)
    assert status == 200 and "guestbook v7" in page and " visits" not in page


def contrast(work: Path, env: dict[str, str], port: int) -> None:
    """`docker-compose up -d` of the same file after a code change, under the same probe."""
    project = ["docker-compose", "-p", "dycontrast", "-f", str(work / "docker-compose.yml")]
    run_env = {**os.environ, **env, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}
    try:
        up = subprocess.run([*project, "up", "-d", "--build"], capture_output=True, text=True,
                            timeout=300, env=run_env, cwd=work)
        assert up.returncode == 0, up.stderr[-3000:]
        for _ in range(120):
            try:
                if get(port, "localhost", "/up")[0] == 200:
                    break
            except OSError:
                pass
            subprocess.run(["sleep", "0.5"], check=False)
        cmd = (f"echo '# contrast' >> {shlex.quote(str(work.parent / 'guestbook' / 'web.py'))}"
               f" && APP_VERSION=v99 {' '.join(map(shlex.quote, project))} up -d --build")
        probe = subprocess.run([*zd_probe(), "--url", f"http://127.0.0.1:{port}/", "--host",
                                "localhost", "--post", "--threads", "4", "--max-seconds", "200",
                                "--", "sh", "-c", cmd], capture_output=True, text=True,
                               timeout=300, env=run_env, cwd=REPO)
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        print(f"docker-compose up -d of the same file: {result['ok']} ok, {result['failed']} "
              "failed")
        assert result["command_exit"] == 0, probe.stderr[-3000:]
        assert result["ok"] > 0
    finally:
        subprocess.run([*project, "down", "-v", "--rmi", "local"], capture_output=True,
                       timeout=120, env=run_env, cwd=work)


def test_two_routed_services_each_switch_with_zero_downtime(clean: None,
                                                            tmp_path: Path) -> None:
    hello = EXAMPLES / "hello"
    build = (f'{{context: {hello}, args: {{BASE: dockyard-testbed/tools, '
             'VERSION: "${HELLO_VERSION:-v1}"}}')
    (tmp_path / "docker-compose.yml").write_text(
        f"services:\n  app:\n    build: {build}\n    ports: ['8080:8080']\n"
        f"  admin:\n    build: {build}\n"
        "    command: [httpd, -f, -p, '8081', -h, /www]\n    expose: ['8081']\n")
    cfg = tmp_path / "dockyard.toml"
    cfg.write_text(f'[app]\nname = "tworoutes"\n[server]\nhost = "{SSH_HOST}"\n'
                   '[compose]\nweb = ["app", "admin"]\n'
                   '[compose.domains]\nadmin = ["tworoutes-admin.test"]\n'
                   '[web]\ndomains = ["tworoutes.test"]\ntls = false\n'
                   'healthcheck_interval = "500ms"\n'
                   '[deploy]\ndrain_timeout = "10s"\nstop_timeout = "5s"\n' + PROXY)
    CREATED.append(cfg)
    first = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert first.returncode == 0, first.output[-3000:]
    assert get(HTTP_PORT, "tworoutes.test")[1].strip() == "hello v1"
    assert get(HTTP_PORT, "tworoutes-admin.test")[1].strip() == "hello v1"
    deploys = " && ".join(f"HELLO_VERSION={v} {shlex.quote(sys.executable)} -m dockyard -c "
                          f"{shlex.quote(str(cfg))} deploy" for v in ("v2", "v3"))
    probe = subprocess.run([*zd_probe(), "--url", f"http://127.0.0.1:{HTTP_PORT}/", "--host",
                            "tworoutes-admin.test", "--post", "--threads", "4",
                            "--max-seconds", "200", "--", "sh", "-c", deploys],
                           capture_output=True, text=True, timeout=300, cwd=REPO)
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert result["command_exit"] == 0, probe.stderr[-3000:]
    assert result["failed"] == 0 and result["ok"] > 20, (result, probe.stderr[-2000:])
    assert get(HTTP_PORT, "tworoutes.test")[1].strip() == "hello v3"
    assert get(HTTP_PORT, "tworoutes-admin.test")[1].strip() == "hello v3"
    status = dockyard("-c", str(cfg), "status")
    assert "admin" in status.output and status.returncode == 0, status.output
    # no longer routed: the next deploy takes its name out of the router
    cfg.write_text(cfg.read_text().replace('web = ["app", "admin"]', 'web = "app"'))
    again = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert again.returncode == 0, again.output[-3000:]
    assert get(HTTP_PORT, "tworoutes-admin.test")[0] != 200
    assert get(HTTP_PORT, "tworoutes.test")[1].strip() == "hello v1"
