"""Command building and the runner, with a fake host: exact argv, no server."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from dockyard.errors import CommandFailed, DockyardError, HostError
from dockyard.host.base import Completed, Host
from dockyard.host.command import change, query
from dockyard.host.runner import Invocation, Runner
from dockyard.host.spec import HostSpec
from dockyard.host.ssh import SshHost, control_dir


class LocalRoot(Host):
    """Runs argv on this machine, with /var/lib/dockyard moved to a temporary directory:
    the real scripts (batch, audit, lock) run with sh, as on a server."""

    def __init__(self, root: Path) -> None:
        super().__init__(HostSpec("ssh", "203.0.113.5", "root", 22))
        self.root = str(root)
        self.ran: list[list[str]] = []

    def spawn_argv(self, argv: Sequence[str]) -> list[str]:
        self.ran.append(list(argv))
        return [word.replace("/var/lib/dockyard", self.root) for word in argv]


def runner(host: Host, **kw: object) -> tuple[Runner, io.StringIO]:
    out = io.StringIO()
    r = Runner(host, invocation=Invocation("server setup", user="ann", id="abc"), out=out, **kw)  # type: ignore[arg-type]
    return r, out


def audit_lines(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (root / "audit.log").read_text().splitlines()]


def test_dry_run_prints_changes_runs_queries_and_gives_planned_results(tmp_path: Path) -> None:
    host = LocalRoot(tmp_path)
    r, out = runner(host, dry_run=True)
    assert r.query(query(["echo", "asked"])).out == "asked\n"
    planned = r.change(change(["rm", "-f", "x y"], planned="<gone>"))
    assert planned.planned and planned.ok and planned.out == "<gone>"
    assert host.ran == [["echo", "asked"]]
    assert out.getvalue().splitlines() == ["# query: echo asked", "rm -f 'x y'"]


def test_a_batch_runs_in_one_round_trip_with_an_audit_line_each(tmp_path: Path) -> None:
    host = LocalRoot(tmp_path)
    r, _ = runner(host)
    results = r.change_all([change(["sh", "-c", "echo one"]), query(["echo", "two"]),
                            change(["sh", "-c", "cat; exit 0"], stdin=b"in\n")])
    assert len(host.ran) == 1  # one round trip
    assert [x.out for x in results] == ["one\n", "two\n", "in\n"]
    lines = audit_lines(tmp_path)
    assert [e["command"] for e in lines] == ["sh -c 'echo one'",
                                            "sh -c 'cat; exit 0' < <stdin>"]
    assert lines[0]["user"] == "ann" and lines[0]["invocation"] == "abc"
    assert all(isinstance(e["duration_ms"], int) and e["exit"] == 0 for e in lines)


def test_a_failed_command_stops_its_batch_and_is_audited(tmp_path: Path) -> None:
    host = LocalRoot(tmp_path)
    r, _ = runner(host)
    with pytest.raises(CommandFailed) as info:
        r.change_all([change(["sh", "-c", "echo out; echo boom >&2; exit 3"]),
                      change(["touch", str(tmp_path / "never")])])
    assert info.value.returncode == 3 and info.value.stdout == "out\n"
    assert info.value.lines()[-1].strip() == "boom"
    assert not (tmp_path / "never").exists()
    assert [e["exit"] for e in audit_lines(tmp_path)] == [3]


def test_runtime_api_lines_wait_for_the_next_command_to_be_audited(tmp_path: Path) -> None:
    host = LocalRoot(tmp_path)
    r, _ = runner(host)
    r._pending.append('{"command":"router-api set server a/b state ready","exit":0}\n')
    r.change(change(["true"]))
    first, second = audit_lines(tmp_path)
    assert str(first["command"]).startswith("router-api") and second["command"] == "true"


def test_the_audit_wrapper_of_streamed_commands(tmp_path: Path) -> None:
    host = LocalRoot(tmp_path)
    r, _ = runner(host)
    result = r.change(change(["sh", "-c", "echo built; exit 0"]), stream=False)
    assert result.out == "built\n"
    with pytest.raises(CommandFailed):
        r._single(change(["sh", "-c", "exit 4"]), check=True, stream=False, timeout=None)
    assert [e["exit"] for e in audit_lines(tmp_path)] == [0, 4]


def test_secrets_are_redacted_from_output_and_errors(tmp_path: Path) -> None:
    host = LocalRoot(tmp_path)
    r, out = runner(host, dry_run=True, secrets=["s3cr3t"])
    r.change(change(["echo", "s3cr3t"]))
    assert "s3cr3t" not in out.getvalue() and "[redacted]" in out.getvalue()
    r.dry_run = False
    with pytest.raises(CommandFailed) as info:
        r.change(change(["sh", "-c", "echo boom s3cr3t >&2; exit 1", "x", "s3cr3t"]))
    assert "s3cr3t" not in "\n".join(info.value.lines())
    assert "boom [redacted]" in "\n".join(info.value.lines())
    assert "s3cr3t" not in (tmp_path / "audit.log").read_text()


def test_stdin_is_never_printed(tmp_path: Path) -> None:
    r, out = runner(LocalRoot(tmp_path), dry_run=True)
    r.change(change(["sh", "-c", "cat > f"], stdin=b"PASSWORD=x", stdin_label="<env file>"))
    assert out.getvalue().strip() == "sh -c 'cat > f' < <env file>"


def test_command_failure_carries_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    r, _ = runner(LocalRoot(tmp_path))
    with pytest.raises(CommandFailed) as info:
        r.query(query(["sh", "-c", "echo line1 >&2; echo no such image >&2; exit 125"]))
    err = info.value
    assert err.returncode == 125 and "exit 125" in err.message
    assert err.lines()[-1].strip() == "no such image" and err.code == "DY020"


def test_a_lock_is_held_until_released_and_reads_facts_under_it(tmp_path: Path) -> None:
    from dockyard.host.command import fact

    host = LocalRoot(tmp_path)
    r, _ = runner(host)
    echo = fact(["echo", "under the lock"], lambda a: a.out.strip())
    with r.lock("hello", "deploy", read=[echo]) as values:
        assert values == ["under the lock"]
        with pytest.raises(DockyardError) as info, \
                runner(LocalRoot(tmp_path))[0].lock("hello", "deploy"):
            pass
        assert info.value.code == "DY050" and "(deploy) since" in info.value.message
    with r.lock("hello", "deploy"):  # released: taken again
        pass


def test_ssh_argv_multiplexes_and_pins_host_keys(tmp_path: pytest.TempPathFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", f"{tmp_path}/cfg")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/tmp/dy-test-run")
    host = SshHost(HostSpec("ssh", "203.0.113.5", "root", 2222))
    argv = host.spawn_argv(["docker", "ps", "--format", "{{.Names}}"])
    assert argv[0] == "ssh" and argv[-3:] == ["--", "root@203.0.113.5",
                                              "docker ps --format '{{.Names}}'"]
    opts = " ".join(argv)
    assert "ControlMaster=auto" in opts and "ControlPersist=" in opts
    assert f"ControlPath=/tmp/dy-test-run/dockyard/ssh/{os.getpid()}-%C" in opts
    assert "StrictHostKeyChecking=accept-new" in opts and "BatchMode=yes" in opts
    assert f'UserKnownHostsFile="{tmp_path}/cfg/dockyard/known_hosts"' in opts
    assert "-p 2222" in opts
    assert oct(os.stat("/tmp/dy-test-run/dockyard/ssh").st_mode)[-3:] == "700"


def test_long_control_paths_fall_back_to_a_short_private_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/tmp/" + "x" * 80)
    path = control_dir()
    assert path == Path(f"/tmp/dockyard-ssh-{os.getuid()}")
    assert oct(path.stat().st_mode)[-3:] == "700"


@pytest.mark.parametrize(
    ("stderr", "code"),
    [
        ("ssh: connect to host 1.2.3.4 port 22: Connection refused", "DY010"),
        ("ssh: connect to host 1.2.3.4 port 22: Connection timed out", "DY010"),
        ("ssh: Could not resolve hostname nope: Name or service not known", "DY010"),
        ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nHost key verification failed.",
         "DY011"),
        ("root@1.2.3.4: Permission denied (publickey).", "DY012"),
    ],
)
def test_ssh_failures_become_one_clear_error(stderr: str, code: str,
                                             tmp_path: pytest.TempPathFactory,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    host = SshHost(HostSpec("ssh", "1.2.3.4", "root", 22))
    with pytest.raises(HostError) as info:
        host.check_transport(Completed(255, b"", stderr.encode(), 0.1))
    assert info.value.code == code
    assert len(info.value.lines()) <= 3


def test_remote_exit_255_with_other_text_is_not_a_transport_error(
        tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    host = SshHost(HostSpec("ssh", "1.2.3.4", "root", 22))
    host.check_transport(Completed(255, b"", b"my app exited oddly", 0.1))
    host.check_transport(Completed(1, b"", b"Connection refused", 0.1))  # the command's own
