"""Day two on one server (issue 14): process tables and replicas, resource limits,
destinations."""

from __future__ import annotations

import json
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dockyard import scripts, values
from dockyard.accessories import commands, cron, spec
from dockyard.config.loader import load_config, parse_config
from dockyard.config.model import Config, CronJobConfig, NotifyConfig
from dockyard.docker import containers as ctr
from dockyard.errors import ConfigError, DockyardError
from dockyard.host.command import Answer
from dockyard.host.runner import Runner
from dockyard.jobs import runs as job_runs
from dockyard.jobs.schedule import next_run
from dockyard.notify import Notifier
from dockyard.router import container as router
from dockyard.router.ensure import can_hand_over as hand_over_possible
from dockyard.router.ensure import hand_over
from dockyard.server import disk
from dockyard.state import snapshot
from tests.fake import FakeServer
from tests.unit.test_flows import config as flows_config
from tests.unit.test_flows import deploy as flows_deploy
from tests.unit.test_flows import runner as flows_runner
from tests.unit.test_flows import served

BASE = '[app]\nname = "shop"\n[server]\nhost = "local"\n'


def test_a_process_list_and_a_process_table_mean_the_same() -> None:
    short = parse_config(BASE + '[processes]\nworker = ["python", "w.py"]\n')
    table = parse_config(BASE + '[processes.worker]\ncommand = ["python", "w.py"]\n')
    assert short.processes == table.processes
    assert short.processes["worker"].replicas == 1


def test_a_process_table_takes_replicas_memory_and_cpus() -> None:
    cfg = parse_config(BASE + '[processes.worker]\ncommand = "python w.py"\nreplicas = 3\n'
                       'memory = "256M"\ncpus = "0.5"\n')
    proc = cfg.processes["worker"]
    assert (proc.command, proc.replicas, proc.memory, proc.cpus) == (
        ["python", "w.py"], 3, "256m", 0.5)


@pytest.mark.parametrize(("text", "expected"), [
    ('memory = "1x"', 'web.memory: "1x" is not a memory size'),
    ('memory = 512', "web.memory: 512 is not a memory size"),
    ('memory = "1k"', "below Docker's minimum"),
    ("cpus = 0", "web.cpus: 0 is not a CPU limit"),
    ('cpus = "lots"', "is not a CPU limit"),
    ("cpus = true", "is not a CPU limit"),
    ("replicas = 0", "web.replicas"),
])
def test_bad_limits_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + f"[web]\n{text}\n")
    assert expected in str(err.value), str(err.value)
    assert "line 6" in str(err.value)


def test_limits_become_docker_options() -> None:
    assert values.limits("512m", 0.5) == ["--memory=512m", "--memory-swap=512m", "--cpus=0.5"]
    assert values.limits("1g", 2, swarm=True) == ["--limit-memory=1g", "--limit-cpu=2"]
    assert values.limits(None, None) == []


def test_accessory_limits_go_on_its_run_line(tmp_path: Path) -> None:
    cfg = parse_config(BASE + '[accessories.db]\nimage = "postgres:16"\nmemory = "1g"\n'
                       "cpus = 1.5\n")
    argv = commands.run(spec.resolve(cfg, "db", tmp_path), "hash").argv
    assert "--memory=1g" in argv and "--cpus=1.5" in argv


def test_memory_kills_are_read_from_inspect() -> None:
    fact = ctr.memory_kills(["shop-web-v1-aaaaaa", "shop-worker-v1-bbbbbb"])
    assert list(fact.command.argv[-2:]) == ["shop-web-v1-aaaaaa", "shop-worker-v1-bbbbbb"]
    found = fact.parse(Answer(0, "/shop-web-v1-aaaaaa true 2 536870912\n"
                                 "/shop-worker-v1-bbbbbb false 0 0\n", ""))
    assert list(found) == ["shop-web-v1-aaaaaa"]
    assert found["shop-web-v1-aaaaaa"].describe() == (
        "killed for exceeding its memory limit of 512m (restarted 2 times)")


def _files(tmp_path: Path, base: str, over: str | None) -> Path:
    path = tmp_path / "dockyard.toml"
    path.write_text(base)
    if over is not None:
        (tmp_path / "dockyard.staging.toml").write_text(over)
    return path


def test_a_destination_is_merged_over_the_file_and_suffixes_the_name(tmp_path: Path) -> None:
    path = _files(tmp_path, BASE + '[web]\ndomains = ["shop.example"]\nport = 3000\n'
                  '[env]\nMODE = "production"\nA = "1"\n',
                  '[server]\nhost = "ssh://root@198.51.100.7"\n[web]\n'
                  'domains = ["staging.shop.example"]\n[env]\nMODE = "staging"\n')
    prod, staging = load_config(path), load_config(path, "staging")
    assert prod.app.name == "shop" and staging.app.name == "shop-staging"
    assert staging.server.host == "ssh://root@198.51.100.7"
    assert staging.web.domains == ["staging.shop.example"] and staging.web.port == 3000
    assert staging.env == {"MODE": "staging", "A": "1"}


def test_a_destination_may_name_the_app(tmp_path: Path) -> None:
    path = _files(tmp_path, BASE, '[app]\nname = "shop-preview"\n')
    assert load_config(path, "staging").app.name == "shop-preview"


def test_a_missing_destination_file_says_what_to_write(tmp_path: Path) -> None:
    path = _files(tmp_path, BASE, None)
    with pytest.raises(ConfigError) as err:
        load_config(path, "staging")
    assert "dockyard.staging.toml: no such file" in str(err.value)


def test_an_error_in_the_destination_file_is_named_there(tmp_path: Path) -> None:
    path = _files(tmp_path, BASE, '\n[web]\nport = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, "staging")
    assert "dockyard.staging.toml line 3: web.port" in str(err.value), str(err.value)


@pytest.mark.parametrize("name", ["Staging", "-x", "a b", "../x", "x" * 21])
def test_a_bad_destination_name_is_refused(tmp_path: Path, name: str) -> None:
    path = _files(tmp_path, BASE, "")
    with pytest.raises(ConfigError) as err:
        load_config(path, name)
    assert "not a destination name" in str(err.value)


# -- scheduled jobs ---------------------------------------------------------------------------

def _jobs(text: str) -> dict[str, CronJobConfig]:
    return parse_config(BASE + text).cron


def test_jobs_are_one_crontab_per_time_zone_and_backups_stay_in_utc(tmp_path: Path) -> None:
    cfg = parse_config(BASE + '[cron.a]\nschedule = "*/10 * * * *"\ncommand = ["x"]\n'
                       '[cron.b]\nschedule = "@hourly"\ncommand = "python b.py --now"\n'
                       'timezone = "Europe/Paris"\ntimeout = "5m"\nkeep = 3\n'
                       '[accessories.db]\nimage = "postgres:16"\nbackup = { schedule = "daily" }\n')
    accs = spec.resolve_all(cfg, tmp_path)
    files = cron.files("shop", accs, "docker:27-cli", cfg.cron)
    assert files["cron/tabs.list"] == b"utc\nserver\ntz-europe-paris\n"
    assert files["cron/tabs/utc/TZ"] == b"UTC\n" and "cron/tabs/server/TZ" not in files
    assert files["cron/tabs/tz-europe-paris/TZ"] == b"Europe/Paris\n"
    server = files["cron/tabs/server/root"].decode()
    assert ("*/10 * * * * sh /var/lib/dockyard/apps/shop/cron/cron-job.sh shop a shop 3600 20 "
            ">/dev/null 2>&1") in server
    paris = files["cron/tabs/tz-europe-paris/root"].decode()
    assert "0 * * * * sh /var/lib/dockyard/apps/shop/cron/cron-job.sh shop b shop 300 3" in paris
    assert files["cron/jobs/b.cmd"] == b"python b.py --now\n"
    assert all("%" not in body.decode() for name, body in files.items() if "tabs/" in name)
    # a job changed: the cron container is replaced (its config hash changes)
    other = _jobs('[cron.a]\nschedule = "*/5 * * * *"\ncommand = ["x"]\n')
    assert cron.config_hash("shop", accs, "t", cfg.cron) != cron.config_hash("shop", accs, "t",
                                                                             other)
    assert cron.wanted([], other) and not cron.wanted([], {})


def test_a_job_command_with_quotes_survives_the_shell(tmp_path: Path) -> None:
    jobs = _jobs('[cron.q]\nschedule = "@daily"\ncommand = ["sh", "-c", "echo \\"$A\\" \'b c\'; x=1"]\n')
    text = cron.files("shop", [], "t", jobs)["cron/jobs/q.cmd"].decode()
    import shlex

    assert shlex.split(text) == ["sh", "-c", "echo \"$A\" 'b c'; x=1"]


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("*/10 * * * *", "2026-12-02 12:03", "2026-12-02 12:10"),
    ("0 3 * * *", "2026-12-02 03:00", "2026-12-03 03:00"),
    ("30 2 1 * *", "2026-12-02 12:00", "2027-01-01 02:30"),
    ("0 0 * * 0", "2026-12-02 12:00", "2026-12-06 00:00"),  # Sunday
    ("0 0 * * 7", "2026-12-02 12:00", "2026-12-06 00:00"),  # 7 is Sunday too
    ("0 12 13 * 5", "2026-12-02 12:00", "2026-12-04 12:00"),  # day 13 or a Friday
    ("15 9-17/4 * * 1-5", "2026-12-05 00:00", "2026-12-07 09:15"),  # Saturday -> Monday
    ("0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"),
    ("0 0 30 2 *", "2026-03-01 00:00", None),
])
def test_the_next_run_is_read_as_crond_reads_it(schedule: str, after: str,
                                                 expected: str | None) -> None:
    start = datetime.strptime(after, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    found = next_run(schedule, start)
    assert (found.strftime("%Y-%m-%d %H:%M") if found else None) == expected


def test_kept_runs_and_the_running_job_are_read_back() -> None:
    fact = job_runs.read("shop", ["a", "b"])
    answer = Answer(0, "tz Europe/Paris\nrunning shop/a\nrunning other/a\nrunning \n"
                       "run a 20261202T120000Z\t0\t6\tv1\nrun a 20261202T121000Z\t3\t2\tv2\n"
                       "run b garbage\nrun c 20261202T120000Z\t0\t1\tv1\n", "")
    seen = fact.parse(answer)
    assert seen.timezone == "Europe/Paris" and seen.running == {"a"}
    assert [r.result for r in seen.runs["a"]] == ["ok", "failed (exit 3)"]
    assert seen.runs["b"] == [] and "c" not in seen.runs
    assert job_runs.Run("x", 124, 1, "v1").result == "timed out"


@pytest.mark.parametrize(("text", "expected"), [
    ('schedule = "61 * * * *"\ncommand = ["x"]', "cron.j.schedule"),
    ('schedule = "@hourly"', "cron.j.command is required"),
    ('schedule = "@hourly"\ncommand = ["x"]\ntimezone = "Mars/Base"', "not a time zone"),
    ('schedule = "@hourly"\ncommand = ["x"]\ntimeout = "0s"', "cron.j.timeout"),
])
def test_bad_jobs_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + f"[cron.j]\n{text}\n")
    assert expected in str(err.value), str(err.value)


# -- notifications ----------------------------------------------------------------------------

def test_the_body_names_the_event_and_carries_no_secret() -> None:
    sent: list[bytes] = []
    notifier = Notifier(NotifyConfig(command=["cat"]), "shop", "root@h:22",
                        redact=lambda text: text.replace("s3cret", "***"))
    notifier._run = lambda event, data: sent.append(data)  # type: ignore[method-assign]
    notifier.send("deploy.failed", error="DY052", message="migrate failed: password s3cret")
    notifier.close()
    [raw] = sent
    data = json.loads(raw)
    assert data["event"] == "deploy.failed" and data["app"] == "shop"
    assert data["source"] == "laptop" and "s3cret" not in raw.decode()
    assert {"time", "user", "host", "dockyard", "destination"} <= set(data)


def test_a_receiver_that_never_answers_costs_at_most_the_timeout() -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(8)
    try:
        url = f"http://127.0.0.1:{dead.getsockname()[1]}/"
        notifier = Notifier(NotifyConfig(webhook=url, timeout=1.0), "shop", "h")
        started = time.monotonic()
        notifier.send("deploy.started")
        notifier.send("deploy.succeeded", release="v2")
        notifier.close()
        assert time.monotonic() - started < 1.9  # once the timeout, not once per event
    finally:
        dead.close()


def test_a_command_gets_the_json_on_stdin(tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    notifier = Notifier(NotifyConfig(command=["sh", "-c", f"cat > {out}"]), "shop", "h")
    notifier.send("rollback.succeeded", release="v3")
    notifier.close()
    assert json.loads(out.read_text())["release"] == "v3"
    assert notifier.results == [("rollback.succeeded", "command", "exit 0")]


# -- server status and prune ------------------------------------------------------------------

def test_server_status_is_read_from_one_script() -> None:
    text = ("app\tshop\t4\t2\ndomains\tshop\tshop.example\twww.shop.example\n"
            "app\tblog\t-\t5\nctr\tshop\tweb\trunning\nctr\tshop\tweb\trunning\n"
            "ctr\tshop\tworker\texited\nctr\tshop\trelease\texited\n"
            "df\tImages\t2.5GB\t1.2GB (48%)\ndf\tLocal Volumes\t300MB\t0B (0%)\n"
            "logs\t2147483648\nbackups\t1024\nfs\t1000\t900\t100\t90%\n")
    seen = disk.status().parse(Answer(0, text, ""))
    shop, blog = seen.apps[1], seen.apps[0]
    assert (shop.release, shop.keep, shop.domains) == ("v4", 2, ["shop.example",
                                                                 "www.shop.example"])
    assert shop.processes == {"web": [2, 2], "worker": [0, 1]}
    assert shop.health == "worker not running" and blog.health == "not deployed"
    warnings = " ".join(seen.warnings())
    assert "90% full" in warnings and "1.2GB (48%) reclaimable" in warnings
    assert "container logs take 2.1GB" in warnings and "shop: worker not running" in warnings
    assert disk.parse_size("512.3kB") == 512300 and disk.parse_size("?") == 0


def test_prune_lists_what_it_removes_and_never_removes_volumes() -> None:
    found = disk.parse_removed("image dockyard/gone:v1 1000\nimage sha256:ab 5\n"
                               "container shop-web-v1-aaaaaa\nvolume gone-db-data\nnoise\n")
    assert [(p.kind, p.name, p.size) for p in found] == [
        ("image", "dockyard/gone:v1", 1000), ("image", "sha256:ab", 5),
        ("container", "shop-web-v1-aaaaaa", 0), ("volume", "gone-db-data", 0)]
    script = scripts.source("server-prune")
    assert "docker volume rm" not in script
    assert "--filter label=dockyard.process" in script  # processes only: never accessories


def test_prune_keeps_a_deploy_under_way_its_image(tmp_path: Path) -> None:
    """A deploy builds vN before it records the release; a prune meanwhile (another app's
    shell, cron) must not take it, nor anything of an app whose lock is held."""
    import subprocess

    state = tmp_path / "state"
    for app, numbers in (("shop", [1, 2, 3]), ("busy", [1])):
        releases = state / "apps" / app / "releases"
        releases.mkdir(parents=True)
        for n in numbers:
            (releases / f"v{n}.json").write_text(f'{{"outcome":"superseded","n":{n}}}')
        (state / "apps" / app / "current").write_text(str(numbers[-1]))
        (state / "apps" / app / "keep").write_text("1")
    images = ("dockyard/shop:v1", "dockyard/shop:v2", "dockyard/shop:v3", "dockyard/shop:v4",
              "dockyard/busy:v0", "dockyard/gone:v7")
    log = tmp_path / "docker.log"
    fake = ('docker() { case "$1 $2" in "image ls") [ "$3" = -q ] || printf "%s\\n" '
            + " ".join(f"'{ref.replace(':', ' ')} id'" for ref in images)
            + ' ;; "image inspect") echo 10 ;; "image rm") echo "$4" >> ' + str(log)
            + ' ;; esac; }; ')
    script = scripts.source("server-prune").replace("state=/var/lib/dockyard",
                                                     f"state={state}")
    lock = state / "apps" / "busy" / "lock"
    lock.touch()
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"])
    try:
        time.sleep(0.3)
        run = subprocess.run(["sh", "-c", fake + script, "server-prune", "remove"],
                             capture_output=True, text=True, timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert run.returncode == 0, run.stderr
    # shop keeps its live v3 and the unrecorded v4; busy (locked) keeps even v0; gone goes
    assert log.read_text().split() == ["dockyard/shop:v1", "dockyard/shop:v2",
                                       "dockyard/gone:v7"]


# -- replicas ---------------------------------------------------------------------------------

def test_every_backend_has_room_for_a_start_first_switch_of_the_most_replicas() -> None:
    from dockyard.config.model import WebConfig
    from dockyard.router import config as rc

    most = WebConfig.model_fields["replicas"].metadata
    assert any(getattr(m, "le", None) == rc.MAX_REPLICAS for m in most)
    assert len(rc.server_names(1)) >= 2 * rc.MAX_REPLICAS


@pytest.mark.parametrize(("out", "expected"), [
    ("172.17.0.1 172.17.0.0/16 \n", "172.17.0.1"),
    (" 172.17.0.0/16 \n", "172.17.0.1"),  # docker0 existed before dockerd: no gateway recorded
    ("", ""),
])
def test_the_bridge_gateway_is_found_with_or_without_docker_recording_it(out: str,
                                                                        expected: str) -> None:
    from dockyard.deploy import sites

    assert sites.bridge_gateway().parse(Answer(0, out, "")) == expected


# -- a router upgrade, on the fake server -----------------------------------------------------

def _router_snapshot(server: FakeServer, cfg: Config) -> tuple[Runner, snapshot.Snapshot]:
    run = flows_runner(server, command="router apply")
    names = snapshot.facts(None, cfg)
    return run, snapshot.assemble(list(names), run.read(*names.values()))


def test_a_new_haproxy_takes_over_and_the_holder_stays() -> None:
    server = FakeServer()
    cfg = flows_config()
    flows_deploy(server, cfg)
    holder = server.containers[router.NAME]
    assert server.containers[router.HAPROXY].labels["dockyard.role"] == "router"
    newer = cfg.proxy.model_copy(update={"router_image": "haproxy:3.0"})
    server.images["haproxy:3.0"] = "sha256:new"
    run, snap = _router_snapshot(server, cfg)
    assert hand_over_possible(snap)
    hand_over(run, newer, snap)
    assert server.containers[router.HAPROXY].image == "haproxy:3.0"
    assert router.NEXT not in server.containers and server.containers[router.NAME] is holder
    assert served(server, "hello.test")  # still routed
    commands = [e["command"] for e in server.audit()]
    # in this order, each after the one before
    at = -1
    for prefix in ("docker run -d --name=dockyard-haproxy-next", "docker update --restart=no",
                   "docker kill --signal=USR1", "docker rm -f -- dockyard-haproxy",
                   "docker rename -- dockyard-haproxy-next dockyard-haproxy"):
        at = next(i for i, c in enumerate(commands) if i > at and c.startswith(prefix))
        if prefix.startswith("docker run"):
            assert "-x /run/dockyard/admin.sock" in commands[at]


def test_a_new_haproxy_that_does_not_load_leaves_the_old_one_serving() -> None:
    server = FakeServer()
    cfg = flows_config()
    flows_deploy(server, cfg)
    old = server.containers[router.HAPROXY]
    server.haproxy_loads = False
    server.images["haproxy:broken"] = "sha256:bad"
    run, snap = _router_snapshot(server, cfg)
    with pytest.raises(DockyardError) as err:
        hand_over(run, cfg.proxy.model_copy(update={"router_image": "haproxy:broken"}), snap)
    assert err.value.code == "DY040" and "the old one keeps serving" in err.value.message
    assert server.containers[router.HAPROXY] is old and old.state == "running"
    assert router.NEXT not in server.containers
    assert not any(e["command"].startswith("docker kill") for e in server.audit())


def test_a_router_of_the_earlier_layout_is_recreated_not_handed_over() -> None:
    server = FakeServer()
    cfg = flows_config()
    flows_deploy(server, cfg)
    server.containers.pop(router.HAPROXY)  # one container, as an earlier Dockyard made it
    server.containers[router.NAME].labels.pop("dockyard.config", None)
    _, snap = _router_snapshot(server, cfg)
    assert snap.router.legacy and snap.router.running and not hand_over_possible(snap)
