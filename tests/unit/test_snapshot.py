"""The server's state as facts: each a command and its parser, read in one round trip."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from dockyard import scripts
from dockyard.deploy import build
from dockyard.host.command import Answer
from dockyard.state import snapshot
from dockyard.state.releases import Outcome, Release, parse_state

ROUTES = ('{"app":"a","slot":4,"port":3000,"domains":["a.test"]}\n'
          '{"app":"b","slot":1,"port":80,"domains":["b.test"]}\n')


def test_each_fact_parses_what_its_command_prints() -> None:
    names = snapshot.facts("a")
    answers = {
        "state_dir": Answer(0, ""),
        "who": Answer(0, "uid=1000(deploy) gid=1000(deploy) groups=1000(deploy),999(docker)\n"),
        "proxy": Answer(0, '{"http_port": 8080, "https_port": 8443}'),
        "networks": Answer(0, "bridge\ndockyard\na\n"),
        # what docker prints: the found ones (a trailing space after the networks), and an
        # error line for each missing one
        "helpers": Answer(1, "/dockyard-router\ttrue\trunning\t2026-11-28T10:00:00Z\t\t"
                          "a Dockyard \n/dockyard-certs\ttrue\trunning\tx\tabc123\t\n",
                          "Error response from daemon: No such container: a-cron\n"),
        "images": Answer(1, "sha256:1\n", "Error response from daemon: no such image: "
                         "haproxy:2.8: No such image: haproxy:2.8\nError: No such image: "
                         "goacme/lego:v4.19\n"),
        "routes": Answer(0, ROUTES),
        "env": Answer(0, "TOKEN=abc=def\n"),
        "app": Answer(0, Release(1, "dockyard/a:v1", outcome=Outcome.LIVE).to_json().decode()
                      + "--current\n1\n\n--route\n" + ROUTES.split("\n")[0] + "\n"),
        "app_containers": Answer(0, (
            "a-web-v1-abcdef\tweb\t1\trunning\tUp 3 minutes\t\t\tdockyard/a:v1\t\t\t\n"
            "a-db\t\t\trunning\tUp 3 days\tdb\tpostgres\tpostgres:16\tf00\t\t\n"
            "a-retire-v1-aaaaaa\t\tv1\trunning\tUp 1 second\t\t\ttools\t\tretire\t"
            "slot04-web1,slot04-web2\n"
            "a-retire-v0-bbbbbb\t\tv0\texited\tExited (0)\t\t\ttools\t\tretire\tslot04-web1\n")),
    }
    values = [names[n].parse(answers.get(n, Answer(1, ""))) for n in names]
    snap = snapshot.assemble(list(names), values)
    assert snap.state_dir and snap.who.user == "deploy" and snap.who.gid == 1000
    assert snap.proxy is not None and snap.proxy.http_port == 8080
    assert snap.app.current == 1 and snap.app.route is not None and snap.app.route.slot == 4
    assert snap.networks == {"bridge", "dockyard", "a"}
    assert snap.router.running and snap.router.networks == {"a", "Dockyard"}
    assert not snap.router.on_legacy_network
    assert snap.certs == ("abc123", "running")
    assert [r.app for r in snap.routes.routes] == ["a", "b"]
    assert snap.routes.digest == hashlib.sha256(ROUTES.encode()).hexdigest()
    assert snap.env == {"TOKEN": "abc=def"}
    assert [c.name for c in snap.containers][:2] == ["a-web-v1-abcdef", "a-db"]
    assert snap.accessories["db"].kind == "postgres" and snap.accessories["db"].running
    assert [(r.container, r.slots) for r in snap.retiring] == [
        ("a-retire-v1-aaaaaa", ("slot04-web1", "slot04-web2"))]  # the exited one is done
    assert snap.cron is None
    assert snap.images == {"docker:27-cli": True, "goacme/lego:v4.19": False,
                           "haproxy:2.8": False}


def test_an_empty_server() -> None:
    names = snapshot.facts("a")
    values = [names[n].parse(Answer(1, "", "no such file")) for n in names]
    snap = snapshot.assemble(list(names), values)
    assert not snap.state_dir and snap.proxy is None and snap.app.releases == []
    assert not snap.router.exists and snap.routes.routes == () and snap.env == {}


def test_the_app_reader_runs_for_real(tmp_path: Path) -> None:
    app = tmp_path / "apps" / "a"
    (app / "releases").mkdir(parents=True)
    (app / "releases" / "v1.json").write_bytes(Release(1, "x", outcome=Outcome.LIVE).to_json())
    (app / "current").write_text("1\n")
    proc = subprocess.run(["sh", "-c", scripts.source("read-app"), "x", str(app)],
                          capture_output=True, text=True)
    state = parse_state(proc.stdout)
    assert state.current == 1 and state.releases[0].outcome == Outcome.LIVE


def test_prune_keeps_the_given_releases_and_never_a_newer_one(tmp_path: Path) -> None:
    """It runs detached, after the deploy returned: the next deploy's image (newer than the
    release it kept live) is never removed, nor a dangling image made after it started."""
    cmd = build.prune("hello", 13, [12, 13], "/var/lib/dockyard/apps/hello/prune.log")
    assert cmd.argv[:2] == ("sh", scripts.path("spawn"))
    assert cmd.argv[-5:] == (scripts.path("prune"), "hello", "13", "12", "13")
    # run the script with a fake docker that lists tags and records removals
    log = tmp_path / "docker.log"
    fake = subprocess.run(
        ["sh", "-c", 'docker() { if [ "$2" = ls ]; then printf "v1\\nv12\\nv13\\nv14\\nlatest\\n"; '
         f'else echo "$@" >> {log}; fi; }}; ' + scripts.source("prune"), "prune", "hello",
         "13", "12", "13"], capture_output=True, text=True)
    assert fake.returncode == 0, fake.stderr
    lines = log.read_text().splitlines()
    removed = [line for line in lines if line.startswith("image rm")]
    assert removed == ["image rm -- dockyard/hello:v1"]
    # dangling images: only the app's own (by label), never another project's, and only
    # those older than this prune
    [pruned] = [line for line in lines if line.startswith("image prune")]
    assert pruned.startswith("image prune -f --filter label=dockyard.app=hello --filter until=")
