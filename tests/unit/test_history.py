"""The audit log as a timeline, and `dockyard explain`'s command line and output shape."""

from __future__ import annotations

import io
import json

from dockyard.cli.main import explain_args
from dockyard.host.command import change, query
from dockyard.host.local import LocalHost
from dockyard.host.runner import Invocation, Runner
from dockyard.state import audit


def line(inv: str, command: str, exit_code: int = 0, ms: int = 100, app: str = "hello",
         sub: str = "deploy", time: str = "2026-11-28T10:00:00Z") -> str:
    return json.dumps({"time": time, "user": "ada", "invocation": inv, "subcommand": sub,
                       "app": app, "command": command, "exit": exit_code, "duration_ms": ms})


def test_audit_lines_group_into_one_entry_per_invocation() -> None:
    text = "\n".join([
        line("a1", "docker run -d ...", time="2026-11-28T10:00:00Z"),
        line("a1", "router-api set server slot01/slot01-web1 state ready", ms=5,
             time="2026-11-28T10:00:04Z"),
        "{torn line",
        line("b2", "docker build ...", exit_code=1, ms=2000, sub="deploy",
             time="2026-11-28T11:00:00Z"),
        '{"time":"2026-11-28T12:00:00Z","user":"cron","invocation":"cron","subcommand":'
        '"backup","app":"hello","command":"scheduled backup of db","exit":0,"duration_ms":1000}',
        '{"time":"2026-11-28T13:00:00Z","user":"cron","invocation":"cron","subcommand":'
        '"backup","app":"hello","command":"scheduled backup of db","exit":0,"duration_ms":1000}',
    ])
    entries = audit.parse(text)
    assert [e.invocation for e in entries][:2] == ["a1", "b2"]
    assert len(entries) == 4  # each scheduled run is its own entry
    first = entries[0]
    assert first.outcome == "ok" and len(first.commands) == 2 and first.duration_ms == 105
    assert first.finished == "2026-11-28T10:00:04Z"
    assert entries[1].outcome == "failed: docker build ..."
    assert entries[2].user == "cron" and entries[2].as_dict()["steps"] == 1


def test_a_router_write_retried_after_another_apps_change_is_no_failure() -> None:
    write = "sh /var/lib/dockyard/scripts/x/write-files.sh /var/lib/dockyard 12288"
    entries = audit.parse("\n".join([
        line("c3", write, exit_code=75, sub="rollback", time="2026-11-28T10:00:00Z"),
        line("c3", write, sub="rollback", time="2026-11-28T10:00:01Z"),
        line("d4", "docker run -d ...", exit_code=75, sub="deploy", time="2026-11-28T11:00:00Z"),
    ]))
    assert entries[0].outcome == "ok"
    assert entries[1].outcome == "failed: docker run -d ..."  # 75 elsewhere is a failure


def test_explain_is_a_dry_run_with_reasons() -> None:
    assert explain_args(["explain", "deploy"]) == ["--explain", "deploy"]
    assert explain_args(["-c", "x.toml", "explain", "env", "set", "A=1"]) == \
        ["--explain", "-c", "x.toml", "env", "set", "A=1"]
    assert explain_args(["run", "--", "explain"]) == ["run", "--", "explain"]
    out = io.StringIO()
    runner = Runner(LocalHost(), invocation=Invocation("deploy"), explain=True, out=out)
    assert runner.dry_run
    runner.on_failure = "the old release keeps serving"
    runner.change(change(["docker", "run", "-d", "--name", "a b", "img"], "start it"))
    runner.query(query(["true"], "ask something"))
    runner.note("# wait until it is healthy", "only healthy containers get traffic")
    lines = out.getvalue().splitlines()
    assert lines == [
        "docker run -d --name 'a b' img",
        "    # why: start it",
        "    # if it fails: the old release keeps serving",
        "# query: true",
        "    # why: ask something",
        "    # if it fails: nothing changes; Dockyard reports what it could not read",
        "# wait until it is healthy",
        "    # why: only healthy containers get traffic",
        "    # if it fails: the old release keeps serving",
    ]
