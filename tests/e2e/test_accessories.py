"""Accessories on the testbed: the guestbook with a real PostgreSQL, Redis, a volume
accessory, backups and restores, scheduled backups, and the wall between apps."""

from __future__ import annotations

import hashlib
import http.client
import json
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    CREATED,
    DB_PASSWORD,
    HTTP_PORT,
    PROXY,
    SSH_HOST,
    STATE,
    guestbook_config,
    hello_config,
    restart_dockerd,
    sh,
    zd_probe,
)
from tests.helpers import REPO, dockyard

BACKUPS = Path("/var/lib/dockyard/backups")


def request(method: str, path: str, body: str | None = None,
            host: str = "guestbook.test") -> tuple[int, str]:
    """A request to a guestbook (host: its APP.test)."""
    conn = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
    try:
        headers = {"Host": host}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def entries(wait: float = 60, app: str = "guestbook") -> list[dict[str, object]]:
    """All guestbook rows, waiting (bounded) while the app or database comes back."""
    deadline = time.monotonic() + wait
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = request("GET", "/entries.json", host=f"{app}.test")
            if status == 200:
                return list(json.loads(body))
            last = status
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"the guestbook did not answer within {wait}s (last: {last})")


def deploy_guestbook(tmp_path: Path, **kw: str) -> Path:
    cfg = guestbook_config(tmp_path / kw.get("name", "guestbook"), **kw)
    run = dockyard("-c", str(cfg), "env", "set", "POSTGRES_PASSWORD", "-", input=DB_PASSWORD)
    assert run.returncode == 0, run.output
    run = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert run.returncode == 0, run.output
    assert DB_PASSWORD not in run.output
    return cfg


def sign(n: int, app: str = "guestbook") -> None:
    for i in range(n):
        status, _ = request("POST", "/", f"name=guest{i}&message=hello+{i}", host=f"{app}.test")
        assert status == 201


def pg_dump_plain(app: str = "guestbook") -> str:
    """The entries table as SQL (the worker rewrites its heartbeat all the time), without the
    random \\restrict token newer pg_dump adds."""
    out = sh("docker", "exec", f"{app}-db", "pg_dump", "-U", "guestbook", "-t", "entries",
             "guestbook").stdout
    return "\n".join(line for line in out.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")))


@pytest.mark.exclusive
def test_guestbook_rows_survive_deploys_restarts_of_everything(alone: None,
                                                               tmp_path: Path) -> None:
    cfg = deploy_guestbook(tmp_path)
    ps = sh("docker", "ps", "--filter", "label=dockyard.accessory=db", "--format",
            '{{.Names}} {{.Label "dockyard.app"}} {{.Label "dockyard.accessory.type"}}').stdout
    assert ps.split() == ["guestbook-db", "guestbook", "postgres"]
    sign(5)
    assert [e["name"] for e in entries()] == [f"guest{i}" for i in range(5)]

    # 5 app deploys under the reference probe (POSTs write rows): nothing fails, and the
    # database is never touched by them
    db_started = sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "guestbook-db").stdout
    # the project's own interpreter: a `python` on PATH may have no Dockyard (or not exist)
    # after each, the logs of the web containers then running (the new one, checked by the
    # router since it started): a healthy app logs no traceback (the router's checks close
    # their connections after reading the whole answer)
    logs = tmp_path / "web.log"
    collect = (f"for c in $(docker ps -q --filter label=dockyard.app=guestbook --filter "
               f"label=dockyard.process=web); do docker logs $c >> {logs} 2>&1; done")
    loop = " && ".join([f"{shlex.quote(sys.executable)} -m dockyard -c {cfg} deploy && "
                        f"sleep 2 && {collect}"] * 5)
    probe = subprocess.run([*zd_probe(), "--url", f"http://127.0.0.1:{HTTP_PORT}/", "--host",
                            "guestbook.test", "--post", "--threads", "4", "--max-seconds", "400",
                            "--", "sh", "-c", loop], capture_output=True, text=True,
                           timeout=480, cwd=REPO)
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    assert probe.returncode == 0 and result["failed"] == 0, (result, probe.stderr[-2000:])
    assert result["command_exit"] == 0, (result, probe.stderr[-2000:])  # the deploys worked
    assert result["ok"] > 50
    web_logs = logs.read_text()
    assert web_logs.count("listening on") >= 5, web_logs[-2000:]
    assert "Traceback" not in web_logs and "ConnectionResetError" not in web_logs, web_logs[-3000:]
    assert sh("docker", "inspect", "-f", "{{.State.StartedAt}}",
              "guestbook-db").stdout == db_started
    rows = entries()
    assert len(rows) > 5  # the probe's POSTs were written
    releases = json.loads(dockyard("-c", str(cfg), "--json", "releases").stdout)
    assert [r["outcome"] for r in releases][:6] == ["live"] + ["superseded"] * 5

    # an accessory restart, a dockerd restart and a router restart: every row stays
    run = dockyard("-c", str(cfg), "accessory", "restart", "db")
    assert run.returncode == 0, run.output
    assert entries() == rows
    restart_dockerd()
    assert entries(wait=90) == rows
    sh("docker", "restart", "dockyard-haproxy")
    assert entries() == rows
    # the worker works too: its heartbeat row counts the entries
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:
        seen = sh("docker", "exec", "guestbook-db", "psql", "-U", "guestbook", "-tAc",
                  "SELECT entries FROM worker_heartbeat WHERE beat_at > now() - interval '10s'",
                  check=False).stdout.strip()
        if seen == str(len(rows)):
            break
        time.sleep(1)
    assert seen == str(len(rows))
    status = json.loads(dockyard("-c", str(cfg), "--json", "status").stdout)
    assert [(a["name"], a["type"], a["state"]) for a in status["accessories"]] == [
        ("db", "postgres", "running")]


def test_postgres_backup_restore_download_and_from_file(clean: None, tmp_path: Path) -> None:
    app = "gbrestore"
    cfg = deploy_guestbook(tmp_path, name=app)
    sign(4, app)
    rows = entries(app=app)
    before = pg_dump_plain(app)
    assert "guest3" in before

    out = tmp_path / "downloads"
    run = dockyard("-c", str(cfg), "--json", "backup", "db", "--download", str(out))
    assert run.returncode == 0, run.output
    taken = json.loads(run.stdout)
    local = Path(taken["downloaded"])
    server_file = BACKUPS / app / "db" / taken["file"]
    recorded = (server_file.parent / (taken["file"] + ".sha256")).read_text().split()[0]
    assert hashlib.sha256(local.read_bytes()).hexdigest() == recorded == taken["sha256"]
    assert local.read_bytes() == server_file.read_bytes()
    assert local.read_bytes().startswith(b"PGDMP")
    assert oct(server_file.stat().st_mode & 0o777) == "0o600"

    run = dockyard("-c", str(cfg), "accessory", "exec", "db", "--", "psql", "-U", "guestbook",
                   "-c", "DROP TABLE entries")
    assert run.returncode == 0, run.output
    assert request("GET", "/entries.json", host=f"{app}.test")[0] >= 500

    # restore: the app answers 503 with a page while it runs, then serves the rows again
    statuses: list[tuple[int, str]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                statuses.append(request("GET", "/up", host=f"{app}.test"))
            except OSError:
                statuses.append((0, ""))
            time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        run = dockyard("-c", str(cfg), "restore", "db", taken["id"], "--yes")
    finally:
        stop.set()
        poller.join(5)
    assert run.returncode == 0, run.output
    assert entries(app=app) == rows
    assert pg_dump_plain(app) == before
    maintenance = [body for status, body in statuses if status == 503]
    assert maintenance and "Down for maintenance" in maintenance[0]
    assert statuses[-1][0] == 200
    listed = json.loads(dockyard("-c", str(cfg), "--json", "backups", "db").stdout)
    assert [b["why"] for b in listed] == ["manual", "pre-restore"]  # oldest first
    assert {b["id"] for b in listed} >= {taken["id"]}

    # the downloaded dump restores into a fresh accessory (how data comes from elsewhere)
    run = dockyard("-c", str(cfg), "accessory", "remove", "db", "--yes", "--volumes")
    assert run.returncode == 0, run.output
    assert f"{app}-db-data" not in sh("docker", "volume", "ls", "-q").stdout.split()
    run = dockyard("-c", str(cfg), "accessory", "boot", "db")
    assert run.returncode == 0, run.output
    assert "entries" not in sh("docker", "exec", f"{app}-db", "psql", "-U", "guestbook",
                               "-tAc", "SELECT tablename FROM pg_tables").stdout
    run = dockyard("-c", str(cfg), "restore", "db", "--from-file", str(local), "--yes")
    assert run.returncode == 0, run.output
    assert entries(app=app) == rows
    assert pg_dump_plain(app) == before
    # a file of the wrong kind is refused before anything changes
    bogus = tmp_path / "dump.sql"
    bogus.write_text("-- not a custom-format dump\n")
    run = dockyard("-c", str(cfg), "restore", "db", "--from-file", str(bogus), "--yes")
    assert run.returncode == 2 and "DY068" in run.stderr and "Traceback" not in run.output


def redis_config(directory: Path, image: str = "dockyard-testbed/redis",
                 backup: str = "", name: str = "kv") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dockyard.toml"
    path.write_text(f'[app]\nname = "{name}"\n[server]\nhost = "{SSH_HOST}"\n'
                    f'[accessories.cache]\nimage = "{image}"\n{backup}\n'
                    '[accessories.files]\nimage = "dockyard-testbed/tools"\n'
                    'cmd = ["sleep", "1000000"]\nvolumes = ["files:/srv"]\n' + PROXY)
    CREATED.append(path)
    return path


def redis(*args: str, app: str = "kv") -> str:
    return sh("docker", "exec", f"{app}-cache", "redis-cli", *args).stdout.strip()


def test_redis_and_volume_round_trips_and_upgrade(clean: None, tmp_path: Path) -> None:
    cfg = redis_config(tmp_path / "kv")
    run = dockyard("-c", str(cfg), "accessory", "boot", "all")
    assert run.returncode == 0, run.output
    assert redis("SET", "user:1", "ada") == "OK" and redis("SET", "user:2", "grace") == "OK"
    run = dockyard("-c", str(cfg), "--json", "backup", "cache")
    assert run.returncode == 0, run.output
    taken = json.loads(run.stdout)
    assert taken["file"].endswith(".rdb")
    redis("FLUSHALL")
    redis("SET", "user:3", "mallory")
    run = dockyard("-c", str(cfg), "restore", "cache", taken["id"], "--yes")
    assert run.returncode == 0, run.output
    assert sorted(redis("--scan").split()) == ["user:1", "user:2"]
    assert redis("GET", "user:1") == "ada"

    # a volume accessory: its volumes are tarred while it is stopped, and put back
    sh("docker", "exec", "kv-files", "sh", "-c", "echo report > /srv/a.txt; mkdir /srv/d; "
       "echo x > /srv/d/.hidden")
    run = dockyard("-c", str(cfg), "--json", "backup", "files")
    assert run.returncode == 0, run.output
    assert "stopped while its volumes are copied" in run.stderr
    tar = json.loads(run.stdout)
    assert tar["file"].endswith(".tar")
    assert sh("docker", "inspect", "-f", "{{.State.Running}}", "kv-files").stdout.strip() == \
        "true"
    sh("docker", "exec", "kv-files", "sh", "-c", "rm -r /srv/a.txt /srv/d; echo new > /srv/b")
    run = dockyard("-c", str(cfg), "restore", "files", tar["id"], "--yes")
    assert run.returncode == 0, run.output
    listing = sh("docker", "exec", "kv-files", "sh", "-c",
                 "cd /srv && find . -type f | sort && cat a.txt d/.hidden").stdout.split()
    assert listing == ["./a.txt", "./d/.hidden", "report", "x"]

    # upgrade: a new image on the same data, a backup taken first
    sh("docker", "tag", "dockyard-testbed/redis", "dockyard-testbed/redis:next")
    try:
        cfg = redis_config(tmp_path / "kv", image="dockyard-testbed/redis:next")
        run = dockyard("-c", str(cfg), "accessory", "upgrade", "cache")
        assert run.returncode == 0, run.output
        assert sh("docker", "inspect", "-f", "{{.Config.Image}}", "kv-cache").stdout.strip() \
            == "dockyard-testbed/redis:next"
        assert redis("GET", "user:2") == "grace"
        whys = [b["why"] for b in json.loads(
            dockyard("-c", str(cfg), "--json", "backups", "cache").stdout)]
        assert "pre-upgrade" in whys
    finally:
        sh("docker", "rmi", "dockyard-testbed/redis:next", check=False)
    # removing the app removes its accessory containers and keeps their volumes and backups,
    # saying so with the option that deletes each; a second remove with them deletes them
    run = dockyard("-c", str(cfg), "remove", "--yes")
    assert run.returncode == 0, run.output
    assert sh("docker", "ps", "-aq", "--filter", "label=dockyard.app=kv").stdout.strip() == ""
    assert {"kv-cache-data", "kv-files"} <= set(sh("docker", "volume", "ls", "-q").stdout.split())
    said = " ".join(run.stdout.split())
    assert "kept 2 volumes with the accessories' data (kv-cache-data, kv-files): dockyard " \
           "remove --volumes deletes them" in said
    assert "/var/lib/dockyard/backups/kv: dockyard remove --backups deletes them" in said
    assert (STATE / "backups" / "kv").is_dir()
    run = dockyard("-c", str(cfg), "remove", "--yes", "--volumes", "--backups")
    assert run.returncode == 0, run.output
    assert "kept" not in run.stdout, run.stdout
    assert not {"kv-cache-data", "kv-files"} & set(sh("docker", "volume", "ls", "-q").stdout.split())
    assert not (STATE / "backups" / "kv").exists()


def test_scheduled_backups_run_on_the_server_and_keep_only_keep(clean: None,
                                                               tmp_path: Path) -> None:
    cfg = redis_config(tmp_path / "kvcron", name="kvcron",
                       backup='backup = { schedule = "* * * * *", keep = 1 }')
    run = dockyard("-c", str(cfg), "accessory", "boot", "cache")
    assert run.returncode == 0, run.output
    assert sh("docker", "inspect", "-f", '{{index .Config.Labels "dockyard.role"}}',
              "kvcron-cron").stdout.strip() == "cron"
    redis("SET", "k", "v", app="kvcron")
    # crond runs in kvcron-cron with the schedule in its crontab; each job is triggered here
    # as crond would run it (the "triggers instead of clock waits": no minute waits)
    assert "crond" in sh("docker", "top", "kvcron-cron").stdout
    [line] = [row for row in Path("/var/lib/dockyard/apps/kvcron/cron/tabs/utc/root").read_text()
              .splitlines() if row and not row.startswith("#")]
    fields = line.split(" ", 5)
    assert fields[:5] == ["*"] * 5 and fields[5].startswith("sh /var/lib/dockyard/apps/kvcron/")
    made = []
    for _ in range(2):
        run = sh("docker", "exec", "kvcron-cron", "sh", "-c", fields[5], check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        listed = json.loads(dockyard("-c", str(cfg), "--json", "backups", "cache").stdout)
        made.append(max(b["id"] for b in listed if b["why"] == "scheduled"))
        time.sleep(1.1)  # backup ids are to the second
    assert made[0] != made[1]
    listed = json.loads(dockyard("-c", str(cfg), "--json", "backups", "cache").stdout)
    scheduled = [b["id"] for b in listed if b["why"] == "scheduled"]
    assert scheduled == [made[1]]  # keep = 1: the run that made the newest pruned the other
    audit = Path("/var/lib/dockyard/audit.log").read_text()
    assert '"command":"scheduled backup of cache","exit":0' in audit


def test_one_apps_database_is_unreachable_from_another_app(clean: None,
                                                           tmp_path: Path) -> None:
    alpha = hello_config(tmp_path / "alpha", name="walla")
    beta = hello_config(tmp_path / "beta", name="wallb",
                        extra='[accessories.db]\nimage = "dockyard-testbed/redis"\n')
    for cfg in (alpha, beta):
        run = dockyard("-c", str(cfg), "deploy", timeout=300)
        assert run.returncode == 0, run.output
    ip = sh("docker", "inspect", "-f",
            '{{(index .NetworkSettings.Networks "wallb").IPAddress}}', "wallb-db").stdout.strip()
    assert ip

    def ping_from(app: str, target: str) -> str:
        name = sh("docker", "ps", "--filter", f"label=dockyard.app={app}", "--filter",
                  "label=dockyard.process=web", "--format", "{{.Names}}").stdout.split()[0]
        return sh("docker", "exec", name, "sh", "-c",
                  f"echo PING | nc -w 2 {target} 6379 2>&1", check=False).stdout

    assert "+PONG" in ping_from("wallb", "db")
    assert "+PONG" in ping_from("wallb", ip)
    assert "+PONG" not in ping_from("walla", "db")
    assert "+PONG" not in ping_from("walla", "wallb-db")
    assert "+PONG" not in ping_from("walla", ip)
