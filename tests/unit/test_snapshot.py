"""The one-round-trip server snapshot: the script runs for real with sh; parsing is pure."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dockyard.deploy import build
from dockyard.state import snapshot
from dockyard.state.releases import Release

OUTPUT = """--statedir
yes
--id
deploy
1000
1000
--proxy
{"http_port": 8080, "https_port": 8443, "router_image": "r", "tools_image": "t"}

--app
""" + Release(1, "dockyard/a:v1", outcome="live").to_json().decode() + """---current
1

---route
{"app":"a","slot":4,"port":3000,"domains":["a.test"]}
--networks
bridge
dockyard
a
--router
ROUTER_LINE
--routes
{"app":"a","slot":4,"port":3000,"domains":["a.test"]}
{"app":"b","slot":1,"port":80,"domains":["b.test"]}
--env
TOKEN=abc=def
""".replace("ROUTER_LINE", "true|2026-11-28T10:00:00Z|a dockyard ")  # docker's trailing space


def test_parse_snapshot() -> None:
    snap = snapshot.parse(OUTPUT)
    assert snap.state_dir and snap.who.user == "deploy" and snap.who.gid == 1000
    assert snap.proxy is not None and snap.proxy.http_port == 8080
    assert snap.app.current == 1 and snap.app.route is not None and snap.app.route.slot == 4
    assert [r.number for r in snap.app.releases] == [1]
    assert snap.networks == {"bridge", "dockyard", "a"}
    assert snap.router_exists and snap.router_running
    assert snap.router_networks == {"a", "dockyard"}
    assert [r.app for r in snap.routes] == ["a", "b"]
    assert snap.env == {"TOKEN": "abc=def"}


def test_parse_empty_server() -> None:
    snap = snapshot.parse("--statedir\n--id\nroot\n0\n0\n--proxy\n\n--app\n---current\n\n"
                          "---route\n--networks\n--router\n--routes\n--env\n")
    assert not snap.state_dir and snap.who.uid == 0 and snap.proxy is None
    assert snap.app.releases == [] and not snap.router_exists and snap.routes == []


def test_snapshot_script_is_valid_sh() -> None:
    script = snapshot.command("a").argv[2]
    assert subprocess.run(["sh", "-n", "-c", script]).returncode == 0


def test_prune_keeps_the_given_releases(tmp_path: Path) -> None:
    cmd = build.prune("hello", [3, 4])
    assert cmd.argv[-3:] == ("hello", "3", "4") and "docker image prune -f" in cmd.argv[2]
    # run the script with a fake docker that lists tags and records removals
    log = tmp_path / "docker.log"
    fake = subprocess.run(
        ["sh", "-c", 'docker() { if [ "$2" = ls ]; then printf "v1\\nv3\\nv4\\nv13\\n"; '
         f'else echo "$@" >> {log}; fi; }}; ' + cmd.argv[2], *cmd.argv[3:]],
        capture_output=True, text=True)
    assert fake.returncode == 0, fake.stderr
    removed = [line for line in log.read_text().splitlines() if line.startswith("image rm")]
    assert removed == ["image rm -- dockyard/hello:v1", "image rm -- dockyard/hello:v13"]
