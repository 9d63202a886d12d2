"""Releases, locks, build contexts (pure or local-only)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from dockyard import scripts
from dockyard.deploy import build
from dockyard.errors import ConfigError
from dockyard.state import lock
from dockyard.state.releases import Release, parse_state


def test_parse_state_and_previous_release() -> None:
    lines = [Release(n, f"dockyard/a:v{n}", outcome=o).to_json().decode()
             for n, o in ((1, "superseded"), (2, "failed"), (3, "live"))]
    text = "".join(lines) + '--current\n3\n\n--route\n{"app":"a","slot":2,"port":80}\n'
    state = parse_state(text)
    assert [r.number for r in state.releases] == [1, 2, 3]
    assert state.current == 3 and state.next_number == 4
    assert state.route is not None and state.route.slot == 2
    prev = state.previous()
    assert prev is not None and prev.number == 1  # failed releases are skipped


def test_parse_state_when_nothing_is_deployed() -> None:
    state = parse_state("--current\n\n--route\n")
    assert state.releases == [] and state.current is None and state.next_number == 1
    assert state.previous() is None


def test_release_json_round_trip_ignores_unknown_fields() -> None:
    r = Release(4, "dockyard/a:v4", kind="rollback", rollback_of=2)
    text = r.to_json().decode().replace("{", '{"future_field":1,', 1)
    assert Release.from_json(text) == r


def test_lock_argv_and_holder() -> None:
    info = json.loads(lock.holder_info("deploy"))
    assert info["command"] == "deploy" and info["user"] and info["since"].endswith("Z")
    holder = lock.parse_holder('123 {"user":"ann","host":"lap","since":"T","command":"deploy"}')
    assert holder is not None and holder.pid == 123
    assert holder.describe() == "ann@lap (deploy) since T"
    assert lock.parse_holder("garbage") is None
    held, who = lock.parse_status('held\n7 {"user":"bo","host":"h","since":"S","command":"x"}\n')
    assert held and who is not None and who.pid == 7
    assert lock.parse_status("free\n") == (False, None)
    assert lock.lock_path(None) == "/var/lib/dockyard/router.lock"


def test_dockerignore_rules(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(
        "# comment\nnode_modules\n*.log\n**/secret.txt\n!keep.log\ndocs/\n")
    rules = build.IgnoreRules.read(tmp_path)
    assert rules.excluded("node_modules") and rules.excluded("node_modules/x/y.js")
    assert rules.excluded("debug.log") and not rules.excluded("keep.log")
    assert rules.excluded("a/b/secret.txt") and rules.excluded("secret.txt")
    assert rules.excluded("docs/index.md") and not rules.excluded("src/app.py")
    assert not rules.excluded("sub/debug.log")  # *.log matches the top level only, as Docker


def test_build_context_tar(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / ".dockerignore").write_text(".git\n*.pyc\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref")
    (tmp_path / "app.py").write_text("print(1)")
    (tmp_path / "app.pyc").write_bytes(b"\0")
    path, count = build.make_context(tmp_path, "Dockerfile")
    try:
        with tarfile.open(path) as tar:
            names = sorted(tar.getnames())
            assert tar.getmember("app.py").uid == 0
        assert names == [".dockerignore", "Dockerfile", "app.py"] and count == 3
        with open(path, "rb") as fh:  # plain ustar/GNU headers: docker build - detects it
            assert fh.read(512)[257:262] == b"ustar"
    finally:
        Path(path).unlink()


def test_build_context_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"build\.dockerfile"):
        build.make_context(tmp_path, "Dockerfile")
    with pytest.raises(ConfigError, match=r"build\.context"):
        build.make_context(tmp_path / "nope", "Dockerfile")


def test_build_command_streams_the_context_and_picks_a_builder() -> None:
    cmd = build.build_command("hello", 3, "Dockerfile", {"B": "1", "A": "2"}, "/tmp/x.tar", 4)
    argv = list(cmd.argv)
    assert argv[:2] == ["sh", scripts.path("build")] and "DOCKER_BUILDKIT=0" in \
        scripts.source("build")
    assert argv[2:4] == ["dockyard/hello:v3", "--file=Dockerfile"]
    assert argv[-4:] == ["--build-arg=A=2", "--build-arg=B=1", "--", "-"]
    assert cmd.stdin_path == "/tmp/x.tar" and cmd.line.endswith("< <build context: 4 files>")
