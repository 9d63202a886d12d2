"""dockyard.toml validation: good files resolve with defaults, bad ones get precise messages."""

from __future__ import annotations

import pytest

from dockyard.config.duration import format_duration, parse_duration
from dockyard.config.loader import find_line, parse_config
from dockyard.errors import ConfigError
from dockyard.host.spec import HostSpec

MINIMAL = '[app]\nname = "hello"\n[server]\nhost = "local"\n'

FULL = """
[app]
name = "hello"
[server]
host = "ssh://root@203.0.113.5:22"
[build]
context = "."
dockerfile = "Dockerfile"
args = { KEY = "value" }
[web]
port = 8080
domains = ["hello.example.com"]
healthcheck = "/up"
[processes]
worker = ["python", "worker.py"]
[release]
command = ["python", "manage.py", "migrate"]
[env]
GREETING = "hi"
[deploy]
drain_timeout = "30s"
stop_timeout = "10s"
keep_releases = 5
[proxy]
http_port = 80
https_port = 443
router_image = "haproxy:2.8"
tools_image = "busybox:1.36"
"""


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "dockyard.toml")
    return info.value


def test_minimal_file_gets_every_default() -> None:
    cfg = parse_config(MINIMAL)
    assert cfg.app.name == "hello"
    assert cfg.web.port == 8080
    assert cfg.web.healthcheck == "/up"
    assert cfg.deploy.drain_timeout == 30.0
    assert cfg.deploy.keep_releases == 5
    assert cfg.proxy.http_port == 80 and cfg.proxy.https_port == 443
    assert cfg.proxy_keys_set() == set()


def test_the_documented_example_is_valid() -> None:
    cfg = parse_config(FULL)
    assert cfg.processes["worker"].command == ["python", "worker.py"]
    assert cfg.release.command == ["python", "manage.py", "migrate"]
    assert cfg.build.args == {"KEY": "value"}
    assert cfg.proxy_keys_set() == {"http_port", "https_port", "router_image", "tools_image"}


def test_string_commands_are_split_like_a_shell() -> None:
    cfg = parse_config(MINIMAL + '[release]\ncommand = "python manage.py migrate --noinput"\n')
    assert cfg.release.command == ["python", "manage.py", "migrate", "--noinput"]


def test_env_numbers_become_text() -> None:
    cfg = parse_config(MINIMAL + "[env]\nWORKERS = 4\nDEBUG = false\n")
    assert cfg.env == {"WORKERS": "4", "DEBUG": "false"}


def test_syntax_error_names_file_and_line() -> None:
    err = error_of('[app]\nname = "hello"\n[server\nhost = "local"\n')
    assert err.code == "DY002"
    assert "dockyard.toml: line 3" in err.message


def test_missing_app_name() -> None:
    err = error_of('[app]\n[server]\nhost = "local"\n')
    assert err.code == "DY003"
    assert "name is required" in err.message and "line 1" in err.message


def test_missing_server_table() -> None:
    err = error_of('[app]\nname = "x"\n')
    assert "[server] is required" in err.message


def test_wrong_type_names_key_line_and_what_to_write() -> None:
    err = error_of(MINIMAL + '[web]\nport = "eighty"\n')
    assert "line 6" in err.message
    assert "web.port" in err.message and "whole number" in err.message


def test_unknown_key_suggests_the_close_one() -> None:
    err = error_of(MINIMAL + "[web]\nprot = 8080\n")
    assert "unknown key web.prot" in err.message
    assert 'did you mean "port"' in err.message
    assert "line 6" in err.message


def test_unknown_table_suggests_too() -> None:
    err = error_of(MINIMAL + "[delpoy]\nkeep_releases = 2\n")
    assert 'did you mean "deploy"' in err.message and "line 5" in err.message


def test_bad_duration_says_what_is_accepted() -> None:
    err = error_of(MINIMAL + '[deploy]\ndrain_timeout = "30 parsecs"\n')
    assert "deploy.drain_timeout" in err.message
    assert '"30s"' in err.message and "line 6" in err.message


@pytest.mark.parametrize("name", ["Hello", "1app", "my_app", "", "a" * 41])
def test_bad_app_names(name: str) -> None:
    err = error_of(f'[app]\nname = "{name}"\n[server]\nhost = "local"\n')
    assert "app.name" in err.message


def test_many_errors_fit_in_eight_lines_in_file_order() -> None:
    text = MINIMAL + "[web]\n" + "".join(f"bad{i} = 1\n" for i in range(12))
    err = error_of(text)
    lines = err.lines()
    assert len(lines) <= 8
    assert "bad0" in lines[0] and "more problems" in lines[-1]


def test_ports_must_differ_and_be_in_range() -> None:
    assert "different ports" in error_of(MINIMAL + "[proxy]\nhttp_port = 81\nhttps_port = 81\n").message
    assert "proxy.http_port" in error_of(MINIMAL + "[proxy]\nhttp_port = 70000\n").message


def test_domains_and_healthcheck_are_checked() -> None:
    assert "not a host name" in error_of(MINIMAL + '[web]\ndomains = ["https://x.com/"]\n').message
    assert "not a path" in error_of(MINIMAL + '[web]\nhealthcheck = "up"\n').message


def test_env_keys_and_process_names_are_checked() -> None:
    assert "not a valid variable name" in error_of(MINIMAL + '[env]\n"1X" = "a"\n').message
    assert '"web" is the routed process' in error_of(MINIMAL + '[processes]\nweb = ["x"]\n').message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("2m", 120), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), (5, 5), ("1.5s", 1.5)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "30x", "s", "1m 3", "-1s", "3 parsecs"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0.5, 1, 30, 90, 3600, 3661, 1.5])
def test_duration_round_trip(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


def test_find_line_handles_dotted_and_inline_keys() -> None:
    text = '[app]\nname = "x"\n[build]\nargs = { A = "1" }\n[web]\nport = 1\n'
    assert find_line(text, ("web", "port")) == 6
    assert find_line(text, ("build", "args", "A")) == 4
    assert find_line('web.port = 3\n', ("web", "port")) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local", HostSpec(kind="local")),
        ("ssh://root@203.0.113.5:22", HostSpec("ssh", "203.0.113.5", "root", 22)),
        ("ssh://deploy@example.com", HostSpec("ssh", "example.com", "deploy", None)),
        ("ssh://myvps", HostSpec("ssh", "myvps", None, None)),
        ("ssh://root@[2001:db8::1]:2222", HostSpec("ssh", "2001:db8::1", "root", 2222)),
    ],
)
def test_host_specs(text: str, expected: HostSpec) -> None:
    assert HostSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["203.0.113.5", "http://x", "ssh://", "ssh://a:b@host",
                                  "ssh://host:99999", "ssh://host/path"])
def test_bad_host_specs(text: str) -> None:
    with pytest.raises(ValueError):
        HostSpec.parse(text)
    err = error_of(f'[app]\nname = "x"\n[server]\nhost = "{text}"\n')
    assert "server.host" in err.message and "line 4" in err.message
