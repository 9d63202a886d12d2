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
        "router": Answer(0, "true|2026-11-28T10:00:00Z|a dockyard \n"),  # docker's space
        "routes": Answer(0, ROUTES),
        "env": Answer(0, "TOKEN=abc=def\n"),
        "app": Answer(0, Release(1, "dockyard/a:v1", outcome=Outcome.LIVE).to_json().decode()
                      + "--current\n1\n\n--route\n" + ROUTES.split("\n")[0] + "\n"),
        "containers": Answer(0, "a-web-v1-abcdef\tweb\t1\trunning\tUp 3 minutes\n"),
        "retiring": Answer(0, "a-retire-v1-aaaaaa\tslot04-web1,slot04-web2\tv1\n"),
        "cron": Answer(1, "", "No such object"),
    }
    values = [names[n].parse(answers.get(n, Answer(1, ""))) for n in names]
    snap = snapshot.assemble(list(names), values)
    assert snap.state_dir and snap.who.user == "deploy" and snap.who.gid == 1000
    assert snap.proxy is not None and snap.proxy.http_port == 8080
    assert snap.app.current == 1 and snap.app.route is not None and snap.app.route.slot == 4
    assert snap.networks == {"bridge", "dockyard", "a"}
    assert snap.router.running and snap.router.networks == {"a", "dockyard"}
    assert [r.app for r in snap.routes.routes] == ["a", "b"]
    assert snap.routes.digest == hashlib.sha256(ROUTES.encode()).hexdigest()
    assert snap.env == {"TOKEN": "abc=def"}
    assert [c.name for c in snap.containers] == ["a-web-v1-abcdef"]
    assert snap.retiring[0].slots == ("slot04-web1", "slot04-web2")
    assert snap.cron is None and snap.images == dict.fromkeys(snap.images, False)


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


def test_prune_keeps_the_given_releases(tmp_path: Path) -> None:
    cmd = build.prune("hello", [3, 4])
    assert cmd.argv[1:] == (scripts.path("prune"), "hello", "3", "4")
    # run the script with a fake docker that lists tags and records removals
    log = tmp_path / "docker.log"
    fake = subprocess.run(
        ["sh", "-c", 'docker() { if [ "$2" = ls ]; then printf "v1\\nv3\\nv4\\nv13\\n"; '
         f'else echo "$@" >> {log}; fi; }}; ' + scripts.source("prune"), "prune", "hello",
         "3", "4"], capture_output=True, text=True)
    assert fake.returncode == 0, fake.stderr
    lines = log.read_text().splitlines()
    removed = [line for line in lines if line.startswith("image rm")]
    assert removed == ["image rm -- dockyard/hello:v1", "image rm -- dockyard/hello:v13"]
    # dangling images: only the app's own (by label), never another project's
    assert "image prune -f --filter label=dockyard.app=hello" in lines
