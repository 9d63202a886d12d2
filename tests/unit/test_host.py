"""Command building and the runner, with a fake host: exact argv, no server."""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from dockyard.errors import CommandFailed, HostError
from dockyard.host.base import Completed, Host
from dockyard.host.command import change, query
from dockyard.host.runner import AUDIT_SCRIPT, Invocation, Runner
from dockyard.host.spec import HostSpec
from dockyard.host.ssh import SshHost, control_dir


class FakeHost(Host):
    """Records what would be spawned; answers from a script of (argv-prefix, result)."""

    def __init__(self, answers: dict[str, Completed] | None = None) -> None:
        super().__init__(HostSpec("ssh", "203.0.113.5", "root", 22))
        self.ran: list[list[str]] = []
        self.stdin: list[bytes | None] = []
        self.answers = answers or {}

    def spawn_argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def execute(self, argv: Sequence[str], *, stdin: bytes | None = None, stream: bool = False,
                timeout: float | None = None, stdin_path: str | None = None,
                stdout_path: str | None = None) -> Completed:
        self.ran.append(list(argv))
        self.stdin.append(stdin)
        line = shlex.join(argv)
        for prefix, result in self.answers.items():
            if prefix in line:
                return result
        return Completed(0, b"", b"", 0.01)


def runner(host: FakeHost, **kw: object) -> tuple[Runner, io.StringIO]:
    out = io.StringIO()
    r = Runner(host, invocation=Invocation("server setup", user="ann", id="abc"), out=out, **kw)  # type: ignore[arg-type]
    return r, out


def test_dry_run_prints_changes_and_runs_only_queries() -> None:
    host = FakeHost()
    r, out = runner(host, dry_run=True)
    r.query(query(["docker", "version"]))
    assert r.change(change(["docker", "rm", "-f", "x y"])) is None
    assert host.ran == [["docker", "version"]]
    assert out.getvalue().splitlines() == ["# query: docker version", "docker rm -f 'x y'"]


def test_changes_are_wrapped_in_the_audit_script() -> None:
    host = FakeHost()
    r, _ = runner(host)
    r.change(change(["install", "-d", "/var/lib/dockyard"]))
    argv = host.ran[0]
    assert argv[:3] == ["sh", "-c", AUDIT_SCRIPT]
    assert argv[5] == ""  # no pending Runtime API lines
    assert argv[6:] == ["install", "-d", "/var/lib/dockyard"]
    prefix = json.loads("{" + argv[4] + "}")
    assert prefix == {"user": "ann", "invocation": "abc", "subcommand": "server setup", "app": "",
                      "command": "install -d /var/lib/dockyard"}


def test_audit_script_appends_a_json_line(tmp_path: pytest.TempPathFactory) -> None:
    # run the real script with sh, pointed at a temporary root, to prove the JSON is valid
    root = str(tmp_path)
    script = AUDIT_SCRIPT.replace("/var/lib/dockyard", root)
    prefix = '"user":"ann","invocation":"abc","subcommand":"x","command":"sh -c \'exit 3\'"'
    pending = '{"command":"router-api set server a/b state ready","exit":0}\n'
    proc = subprocess.run(["sh", "-c", script, "audit", prefix, pending, "sh", "-c",
                           "echo out; exit 3"],
                          capture_output=True, text=True)
    assert proc.returncode == 3 and proc.stdout == "out\n"
    with open(f"{root}/audit.log") as fh:
        first, second = fh.read().strip().splitlines()
    assert json.loads(first)["command"].startswith("router-api")
    entry = json.loads(second)
    assert entry["exit"] == 3 and entry["user"] == "ann" and entry["command"] == "sh -c 'exit 3'"
    assert isinstance(entry["duration_ms"], int) and entry["time"].endswith("Z")


def test_secrets_are_redacted_from_output_and_errors() -> None:
    host = FakeHost({"false": Completed(1, b"", b"boom s3cr3t\n", 0.0)})
    r, out = runner(host, dry_run=True, secrets=["s3cr3t"])
    r.change(change(["echo", "s3cr3t"]))
    assert "s3cr3t" not in out.getvalue() and "[redacted]" in out.getvalue()
    r.dry_run = False
    with pytest.raises(CommandFailed) as info:
        r.change(change(["false", "s3cr3t"]))
    assert "s3cr3t" not in "\n".join(info.value.lines())
    assert "boom [redacted]" in "\n".join(info.value.lines())


def test_stdin_is_never_printed() -> None:
    host = FakeHost()
    r, out = runner(host, dry_run=True)
    r.change(change(["sh", "-c", "cat > f"], stdin=b"PASSWORD=x", stdin_label="<env file>"))
    assert out.getvalue().strip() == "sh -c 'cat > f' < <env file>"


def test_command_failure_carries_exit_code_and_stderr_tail() -> None:
    host = FakeHost({"docker": Completed(125, b"", b"line1\nno such image\n", 0.0)})
    r, _ = runner(host)
    with pytest.raises(CommandFailed) as info:
        r.query(query(["docker", "run", "nope"]))
    err = info.value
    assert err.returncode == 125 and "docker run nope" in err.message
    assert err.lines()[-1].strip() == "no such image" and err.code == "DY020"


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
