"""Hostile and malformed input (issue 18): each numbered finding is a case here.

Every case failed on the main of 2026-12-01 and passes now. The server in the CLI cases is a
closed port on 127.0.0.1: a command that connects gets DY010, so a case that expects another
code proves the check was made before connecting.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dockyard.config.duration import format_duration, parse_duration
from dockyard.config.loader import find_line, parse_config
from dockyard.errors import ConfigError, DockyardError
from dockyard.host.spec import HostSpec
from dockyard.host.ssh import SshHost
from dockyard.state import env as env_state
from tests.helpers import REPO, cli, write_config

CLOSED = "ssh://root@127.0.0.1:1"
MINIMAL = '[app]\nname = "hello"\n[server]\nhost = "local"\n'


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "dockyard.toml")
    return info.value


def closed_config(tmp_path: Path, extra: str = "") -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return write_config(tmp_path, f'[app]\nname = "hello"\n[server]\nhost = "{CLOSED}"\n'
                        f'connect_timeout = "2s"\n{extra}')


# -- 1. the SSH destination ------------------------------------------------------------

@pytest.mark.parametrize("host", [
    "ssh://-oProxyCommand=touch${IFS}pwned@x",
    "ssh://root@-oProxyCommand=x",
    "ssh://ro ot@host",
    "ssh://root@ho$t",
    "ssh://Root@host",
    "ssh://root@host:0",
    "ssh://root@host:65536",
    "ssh://root@host:\u0662\u0662",
    "ssh://root@[::1%$(x)]",
    "ssh://root@host\n",
    "ssh://root@-host",
])
def test_hosts_follow_strict_grammars(host: str) -> None:
    with pytest.raises(ValueError):
        HostSpec.parse(host)
    err = error_of(f'[app]\nname = "hello"\n[server]\nhost = {_toml_str(host)}\n')
    assert "server.host" in err.message and "line 4" in err.message


@pytest.mark.parametrize("host", ["ssh://root@203.0.113.5:22", "ssh://deploy_1@my-vps",
                                  "ssh://myvps", "ssh://root@[2001:db8::1]:2222",
                                  "ssh://_svc@host.example.com", "local"])
def test_good_hosts_still_parse(host: str) -> None:
    HostSpec.parse(host)


def test_ssh_puts_the_destination_after_double_dash() -> None:
    """Even a destination that slipped past the grammar could never be an option."""
    host = SshHost(HostSpec(kind="ssh", hostname="-oProxyCommand=x", user=None, port=22))
    argv = host.spawn_argv(["true"])
    assert argv.index("--") < argv.index("-oProxyCommand=x")
    for tty in (True, False):
        argv = host.spawn_argv_tty(["true"], tty)
        assert argv.index("--") < argv.index("-oProxyCommand=x")
    forward = host.forward_argv("/tmp/l.sock", "/run/r.sock")
    assert forward.index("--") < forward.index("-oProxyCommand=x")
    close = host.control_argv("exit")
    assert close.index("--") < close.index("-oProxyCommand=x")


# -- 2. env values that split into two ------------------------------------------------

SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r", "\n",
              "\0"]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_env_values_with_line_separators_are_refused(sep: str) -> None:
    with pytest.raises(ValueError):
        env_state.check_value("A", f"x{sep}PATH=/evil")
    with pytest.raises(ValueError):
        env_state.format_env({"A": f"x{sep}PATH=/evil"})


def test_env_files_split_on_newline_only() -> None:
    text = "A=x\u2028PATH=/evil\nB=y\x0bz\n"
    assert env_state.parse_env_file(text) == {"A": "x\u2028PATH=/evil", "B": "y\x0bz"}


def test_dotenv_import_never_turns_a_value_into_a_key() -> None:
    with pytest.raises(env_state.DotenvError) as info:
        env_state.parse_dotenv("A=x\u2028PATH=/evil\nB=2\r\n")
    assert info.value.line == 1
    assert env_state.parse_dotenv("A=1\r\nB=2\r\n") == {"A": "1", "B": "2"}


def test_env_set_with_a_separator_is_refused_before_connecting(tmp_path: Path) -> None:
    cfg = closed_config(tmp_path)
    run = cli("-c", str(cfg), "env", "set", "A=x\u2028PATH=/evil")
    assert run.returncode == 2 and "error[DY005]" in run.stderr, run.output
    assert "\u2028" not in run.stderr  # escaped when echoed


def test_env_import_with_a_separator_is_refused_before_connecting(tmp_path: Path) -> None:
    cfg = closed_config(tmp_path)
    dotenv = tmp_path / ".env"
    dotenv.write_text("A=x\u2028PATH=/evil\n", encoding="utf-8")
    run = cli("-c", str(cfg), "env", "import", str(dotenv))
    assert run.returncode == 2 and "error[DY005]" in run.stderr, run.output
    assert "line 1" in run.stderr


def test_nul_in_env_values_is_refused_when_the_file_is_read() -> None:
    err = error_of(MINIMAL + '[env]\nA = "x\\u0000y"\n')
    assert "env.A" in err.message and "line 6" in err.message


# -- 3. values docker could read as options -------------------------------------------

@pytest.mark.parametrize("image", ["--privileged", "-v/:/host", "Hello:1", "a b", "x:",
                                   "x@sha256:12", "registry:99999999/x", "a..b", "UPPER/x",
                                   "x:" + "t" * 200, "postgres:16\n"])
def test_images_follow_dockers_reference_grammar(image: str) -> None:
    for where in (f'[build]\nimage = {_toml_str(image)}\n',
                  f'[accessories.db]\nimage = {_toml_str(image)}\n',
                  f'[proxy]\nrouter_image = {_toml_str(image)}\n'):
        err = error_of(MINIMAL + where)
        assert "image" in err.message and "line 6" in err.message, where


@pytest.mark.parametrize("image", ["postgres:16", "ghcr.io/me/app:1.4", "localhost:5000/a/b",
                                   "a/b@sha256:" + "0" * 64, "docker:27-cli", "a__b/c-d.e:V_1",
                                   "[::1]:5000/x"])
def test_good_images_still_parse(image: str) -> None:
    parse_config(MINIMAL + f'[build]\nimage = {_toml_str(image)}\n')


def test_user_commands_come_after_the_image_and_double_dash() -> None:
    from dockyard.docker import containers as ctr

    spec = ctr.ContainerSpec("hello", "web", 1, "dockyard/hello:v1", "hello",
                             "hello-web-v1-abcdef", "/x.env", ["--privileged", "-v"])
    argv = list(ctr.run(spec, "").argv)
    assert argv.index("--") < argv.index("dockyard/hello:v1") < argv.index("--privileged")
    for token in argv[: argv.index("--")]:
        assert not token.startswith("--privileged")


# -- 4. a trailing newline ------------------------------------------------------------

@pytest.mark.parametrize("extra", [
    '[app]\nname = "hello\\n"\n[server]\nhost = "local"\n',
    MINIMAL + '[web]\ndomains = ["a.com\\n"]\n',
    MINIMAL + '[env]\n"A\\n" = "x"\n',
    MINIMAL + '[build]\nargs = { "A\\n" = "x" }\n',
    MINIMAL + '[processes]\n"worker\\n" = ["x"]\n',
    MINIMAL + '[accessories."db\\n"]\nimage = "redis:7"\n',
    MINIMAL + '[accessories.db]\nimage = "redis:7"\nsecrets = ["A\\n"]\n',
    MINIMAL + '[accessories.db]\nimage = "redis:7"\nvolumes = ["data\\n:/x"]\n',
])
def test_names_with_a_trailing_newline_are_refused(extra: str) -> None:
    assert error_of(extra).code == "DY003"


# -- 5. accepted, breaks later ------------------------------------------------------------

@pytest.mark.parametrize("extra,key", [
    # Arabic-Indic digits: Python's int(), float() and \\d take them
    ('[accessories.db]\nimage = "redis:7"\nport = "\u0661\u0662\u0663"\n', "accessories.db.port"),
    ('[deploy]\nstop_timeout = "\u0661\u0662s"\n', "deploy.stop_timeout"),
    ('[web]\nhealthcheck_interval = 0\n', "web.healthcheck_interval"),
    ('[web]\nhealthcheck_interval = "0s"\n', "web.healthcheck_interval"),
    ('[accessories.db]\nimage = "redis:7"\nbackup = { schedule = "99 99 99 99 99" }\n',
     "accessories.db.backup.schedule"),
    ('[release]\ncommand = []\n', "release.command"),
    ('[processes]\nworker = []\n', "processes.worker"),
    ('[web]\ncommand = ["x", "a\\u0000b"]\n', "web.command"),
    ('[web]\nhealthcheck = "/up;x"\n', "web.healthcheck"),
    ('[server]\n', None),
])
def test_values_that_would_break_later_are_refused_with_key_and_line(extra: str,
                                                                    key: str | None) -> None:
    if key is None:  # connect_timeout of 2^31 s: written into [server] of the minimal file
        text = MINIMAL.replace('host = "local"\n',
                               'host = "local"\nconnect_timeout = 2147483648\n')
        key, line = "server.connect_timeout", "line 5"
    else:
        text = MINIMAL + extra
        line = "line 6" if extra.count("\n") == 2 else "line 7"
    err = error_of(text)
    assert key in err.message and line in err.message, err.message


def test_a_schedule_within_ranges_is_fine() -> None:
    cfg = parse_config(MINIMAL + '[accessories.db]\nimage = "redis:7"\n'
                       'backup = { schedule = "*/15 2-4 1,15 * 0-6" }\n')
    assert cfg.accessories["db"].backup is not None


# -- 6. durations round-trip --------------------------------------------------------------

@pytest.mark.parametrize("seconds", [1234567.5, 100000.5, 0.001, 0.5, 90.0, 3600.0, 0.0,
                                     86399.999, 59.25])
def test_durations_print_as_they_parse(seconds: float) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds, text


@pytest.mark.parametrize("value", ["0.0004s", "0.1ms", 0.0002])
def test_durations_finer_than_a_millisecond_are_refused(value: object) -> None:
    with pytest.raises(ValueError, match="millisecond"):
        parse_duration(value)


def test_config_prints_toml_that_reparses_to_the_same_values() -> None:
    import tomli_w

    cfg = parse_config(MINIMAL + '[deploy]\ndrain_timeout = 86399.5\nstop_timeout = "0.5s"\n')
    again = parse_config(tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True)))
    assert again == cfg


# -- 7. tracebacks ------------------------------------------------------------------------

@pytest.mark.parametrize("value", ['"inf"', '"nan"', "inf", "nan", "1" + "0" * 308,
                                   '"' + "1" * 400 + 's"', "1" + "0" * 76, "-5", '"-5s"'])
def test_absurd_durations_are_one_clear_error(value: str) -> None:
    err = error_of(MINIMAL + f"[deploy]\nstop_timeout = {value}\n")
    assert "deploy.stop_timeout" in err.message and "line 6" in err.message


@pytest.mark.parametrize("text", [
    MINIMAL + "[env]\nA = " + "[" * 2000 + "]" * 2000 + "\n",
    MINIMAL + "[env]\nA = " + "{a=" * 500 + "1" + "}" * 500 + "\n",
])
def test_deep_nesting_is_a_syntax_error(text: str) -> None:
    err = error_of(text)
    assert err.code == "DY002" and "nested" in err.message


def test_cli_cases_are_one_line_with_a_code(tmp_path: Path) -> None:
    cfg = closed_config(tmp_path)
    latin1 = tmp_path / "latin1.env"
    latin1.write_bytes(b"A=1\nB=caf\xe9\n")
    cases = [
        (["-c", "x" * 5000, "config"], "DY006"),
        (["-c", str(cfg), "env", "import", str(latin1)], "DY005"),
        (["-c", str(cfg), "rollback", "²"], "DY005"),
        (["-c", str(cfg), "rollback", "v" + "9" * 5000], "DY005"),
        (["-c", str(tmp_path / "missing" / "dir" / "x.toml"), "init"], "DY005"),
        (["-c", str(tmp_path), "init", "--force"], "DY005"),
    ]
    for args, code in cases:
        run = cli(*args, cwd=tmp_path)
        assert "Traceback" not in run.output, (args, run.output)
        assert run.returncode != 0 and run.stderr.startswith(f"error[{code}]"), (args[:4],
                                                                                run.stderr)
    latin = cli("-c", str(cfg), "env", "import", str(latin1))
    assert "line 2" in latin.stderr


# -- 8. a hang ----------------------------------------------------------------------------

def test_finding_a_line_is_linear() -> None:
    text = MINIMAL + '[build.args]\nNOTE = """\n[' + " " * 3000 + 'x\n"""\n[web]\nport = "x"\n'
    proc = subprocess.run([sys.executable, "-c", (
        "import sys; from dockyard.config.loader import parse_config\n"
        "from dockyard.errors import ConfigError\n"
        "try:\n    parse_config(sys.stdin.read())\nexcept ConfigError as e:\n"
        "    print(e.message)\n")], input=text, capture_output=True, text=True, timeout=20)
    assert "web.port" in proc.stdout and "line 10" in proc.stdout, proc.stdout + proc.stderr
    assert find_line(text, ("web", "port")) == 10
    assert find_line("[a]\nx = 1\n[" + " " * 3000 + "b\n", ("b", "y")) is None


# -- 9. one code, one meaning -------------------------------------------------------------

@pytest.mark.parametrize("args", [["deploy"], ["rollback"], ["env", "set", "A=1"],
                                  ["domains", "remove", "a.test"], ["certs", "renew"]])
def test_a_closed_port_is_a_connection_error_not_a_lock(tmp_path: Path, args: list[str]) -> None:
    cfg = closed_config(tmp_path)
    run = cli("-c", str(cfg), *args)
    assert run.stderr.startswith("error[DY010]"), run.stderr
    assert "Traceback" not in run.output


def test_env_import_over_a_closed_port_is_a_connection_error(tmp_path: Path) -> None:
    cfg = closed_config(tmp_path)
    dotenv = tmp_path / ".env"
    dotenv.write_text("A=1\n")
    run = cli("-c", str(cfg), "env", "import", str(dotenv))
    assert run.stderr.startswith("error[DY010]"), run.stderr


def test_an_undecodable_file_is_a_syntax_error_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dockyard.toml"
    path.write_bytes(b'[app]\nname = "hello"\n[server]\nhost = "caf\xe9"\n')
    run = cli("-c", str(path), "config")
    assert run.stderr.startswith("error[DY002]") and "line 4" in run.stderr, run.stderr


def test_a_domain_clash_on_the_server_has_its_own_code() -> None:
    from dockyard.router.config import Route
    from dockyard.router.routes import check_domains_free

    other = Route(app="blog", slot=1, port=80, domains=["a.test"])
    with pytest.raises(DockyardError) as info:
        check_domains_free("hello", ["a.test"], [other])
    assert info.value.code == "DY043" and "blog" in info.value.message


# -- 10. messages ---------------------------------------------------------------------------

def test_a_name_both_process_and_accessory_names_the_key_and_line() -> None:
    err = error_of(MINIMAL + '[processes]\ndb = ["x"]\n[accessories.db]\nimage = "redis:7"\n')
    assert "accessories.db" in err.message and "line 7" in err.message, err.message


def test_control_characters_are_escaped_in_messages() -> None:
    err = error_of(MINIMAL + '[web]\nport = "\\u001b[31mred\\nline"\n')
    text = "\n".join(err.lines())
    assert "\x1b" not in text and text.count("\n") == len(err.lines()) - 1
    assert "\\x1b" in text


# -- 11. init -------------------------------------------------------------------------------

def test_init_escapes_and_validates_the_host(tmp_path: Path) -> None:
    bad = cli("init", "--host", 'ssh://a"b', cwd=tmp_path)
    assert bad.stderr.startswith("error[DY005]") and "--host" in bad.stderr, bad.stderr
    garbage = cli("init", "--host", "garbage", cwd=tmp_path)
    assert garbage.stderr.startswith("error[DY005]") and "line" not in garbage.stderr
    assert not (tmp_path / "dockyard.toml").exists()


def test_init_survives_an_odd_expose_and_directory_name(tmp_path: Path) -> None:
    odd = tmp_path / ("a" * 39 + "-b")
    odd.mkdir()
    (odd / "Dockerfile").write_text("FROM scratch\nEXPOSE 99999\n")
    run = cli("init", cwd=odd)
    assert run.returncode == 0, run.output
    assert cli("config", cwd=odd).returncode == 0


# -- 12. checked before connecting ------------------------------------------------------------

def test_what_the_config_can_answer_is_checked_before_connecting(tmp_path: Path) -> None:
    cfg = closed_config(tmp_path, '[accessories.db]\nimage = "redis:7"\n')
    cases = [
        (["logs", "-n", "-5"], "DY005"),
        (["history", "-n", "-5"], "DY005"),
        (["rollback", "v0"], "DY005"),
        (["restore", "db", "../../etc/passwd", "--yes"], "DY005"),
        (["backup", "nope"], "DY060"),
        (["restore", "nope", "20261201T000000Z-manual", "--yes"], "DY060"),
        (["accessory", "boot", "nope"], "DY060"),
        (["restore", "db", "--from-file", "/nonexistent", "--yes"], "DY005"),
        (["logs", "nope"], "DY057"),
    ]
    for args, code in cases:
        run = cli("-c", str(cfg), *args)
        assert run.stderr.startswith(f"error[{code}]"), (args, run.stderr)
    no_context = write_config(tmp_path, f'[app]\nname = "hello"\n[server]\nhost = "{CLOSED}"\n'
                              '[build]\ncontext = "nowhere"\n', "nocontext.toml")
    run = cli("-c", str(no_context), "deploy")
    assert run.stderr.startswith("error[DY003]") and "build.context" in run.stderr, run.stderr


# -- 13. the reference --------------------------------------------------------------------------

def test_the_reference_covers_every_model_and_every_duration() -> None:
    text = (REPO / "docs" / "config.md").read_text()
    for key in ("cert_wait", "tunnel_timeout", "connect_timeout"):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{key}`"))
        assert "| duration (" in row and '"' in row.split("|")[3], row
    for key in ("`image`", "`secrets`", "`volumes`", "`schedule`", "`keep`", "`allow_stop`"):
        assert key in text, key


def _toml_str(value: str) -> str:
    import json

    return json.dumps(value)


def test_the_closed_port_is_closed() -> None:
    """Every DY010 above depends on it."""
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        assert s.connect_ex(("127.0.0.1", 1)) != 0
