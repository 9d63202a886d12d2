"""The CLI as a person meets it: bad files, init, global options anywhere. No server needed."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dockyard.cli.main import hoist_global_options
from tests.helpers import cli, dockyard, write_config

BAD_FILES = {
    "syntax": '[app]\nname = "hello"\n[server\nhost = "local"\n',
    "missing name": '[app]\n[server]\nhost = "local"\n',
    "wrong type": '[app]\nname = "hello"\n[server]\nhost = "local"\n[web]\nport = "x"\n',
    "unknown key": '[app]\nname = "hello"\n[server]\nhost = "local"\n[web]\nprot = 8080\n',
    "bad duration": '[app]\nname = "hello"\n[server]\nhost = "local"\n[deploy]\nstop_timeout = "10 secs"\n',
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_config_is_a_short_block_exit_2(tmp_path: Path, case: str) -> None:
    path = write_config(tmp_path, BAD_FILES[case], "BAD.toml")
    run = cli("-c", str(path), "config")
    assert run.returncode == 2, run.output
    assert "Traceback" not in run.output
    lines = run.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 8
    assert lines[0].startswith("error[DY00")
    assert str(path) in lines[0]
    assert run.stdout == ""


def test_missing_file_says_run_init(tmp_path: Path) -> None:
    run = cli("config", cwd=tmp_path)
    assert run.returncode == 2 and "dockyard init" in run.stderr and "Traceback" not in run.stderr


def test_config_prints_resolved_defaults(tmp_path: Path) -> None:
    write_config(tmp_path, '[app]\nname = "hello"\n[server]\nhost = "local"\n')
    run = cli("config", cwd=tmp_path)
    assert run.returncode == 0, run.output
    assert 'drain_timeout = "30s"' in run.stdout and "keep_releases = 5" in run.stdout
    as_json = cli("config", "--json", cwd=tmp_path)
    assert '"http_port": 80' in as_json.stdout
    # [proxy] is server-wide: the output says these are the file's wishes, not the server's
    assert "these are this file's wishes, not necessarily what the" in run.stdout
    assert "This file has no [proxy]: every value below is Dockyard's default." in run.stdout
    write_config(tmp_path, '[app]\nname = "hello"\n[server]\nhost = "local"\n'
                 '[proxy]\nhttp_port = 8080\n')
    run = cli("config", cwd=tmp_path)
    assert "\nhttp_port = 8080\n" in run.stdout
    assert 'router_image = "haproxy:2.8"  # default: not in the file' in run.stdout
    assert tomllib.loads(run.stdout)["proxy"]["http_port"] == 8080


def test_init_reads_expose_refuses_overwrite_and_forces(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\nEXPOSE 3000/tcp\n")
    first = cli("init", cwd=tmp_path)
    assert first.returncode == 0, first.output
    text = (tmp_path / "dockyard.toml").read_text()
    assert "port = 3000" in text and "EXPOSE 3000" in text
    again = cli("init", cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    (tmp_path / "dockyard.toml").write_text("# mine\n")
    forced = cli("init", "--force", "--host", "local", cwd=tmp_path)
    assert forced.returncode == 0
    assert cli("config", cwd=tmp_path).returncode == 0  # the starter is valid


def test_init_without_dockerfile(tmp_path: Path) -> None:
    assert cli("init", cwd=tmp_path).returncode == 0
    assert "no Dockerfile found" in (tmp_path / "dockyard.toml").read_text()


def test_global_options_after_the_subcommand(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[app]\nname = "after"\n[server]\nhost = "local"\n', "x.toml")
    run = cli("config", "--json", "-c", str(path))
    assert run.returncode == 0, run.output
    assert '"name": "after"' in run.stdout


def test_hoist_stops_at_double_dash() -> None:
    assert hoist_global_options(["server", "check", "-v", "--config=a.toml"]) == [
        "-v", "--config=a.toml", "server", "check"]
    assert hoist_global_options(["run", "--", "ls", "-v"]) == ["run", "--", "ls", "-v"]
    assert hoist_global_options(["config", "-c", "x.toml", "--json"]) == [
        "-c", "x.toml", "--json", "config"]


def test_version_and_help() -> None:
    # once through the real entry point, in a process of its own
    assert dockyard("version").stdout.startswith("dockyard ")
    run = cli("--help")
    assert run.returncode == 0 and "server" in run.stdout and "--dry-run" in run.stdout


SHOP = ('[app]\nname = "my-shop"\n[server]\nhost = "local"\n[build]\nimage = "x/y"\n'
        '[web]\nport = 8000\ndomains = ["shop.test", "www.shop.test"]\ntls = false\n'
        '[proxy]\nbind = "127.0.0.1"\nhttp_port = 8080\nhttps_port = 8443\n')


def test_proxy_snippet_prints_only_the_servers_configuration(tmp_path: Path) -> None:
    write_config(tmp_path, SHOP)
    run = cli("proxy", "snippet", "nginx", "--listen", "127.0.0.1:8081", cwd=tmp_path)
    assert run.returncode == 0, run.output
    out = run.stdout
    assert "server 127.0.0.1:8080;" in out and "listen 127.0.0.1:8081;" in out
    assert "server_name shop.test www.shop.test;" in out
    for needle in ("proxy_set_header Host $host;", "X-Forwarded-For $proxy_add_x_forwarded_for",
                   "X-Forwarded-Proto $scheme", "Upgrade $http_upgrade",
                   "proxy_read_timeout 3600s;", "client_max_body_size", "keepalive"):
        assert needle in out, needle
    assert "ssl" not in out and "certificate" not in out  # --listen: plain HTTP only
    assert all(line.startswith("#") or not line.strip() or not line.startswith("put")
               for line in out.splitlines())
    assert "sites-enabled" in run.stderr and "nginx -t" in run.stderr  # where, on stderr
    apache = cli("proxy", "snippet", "apache", "--listen", "127.0.0.1:8081", cwd=tmp_path)
    assert "<VirtualHost 127.0.0.1:8081>" in apache.stdout and "Listen 127.0.0.1:8081" in apache.stdout
    assert "ProxyPreserveHost On" in apache.stdout and "ws://127.0.0.1:8080/" in apache.stdout
    caddy = cli("proxy", "snippet", "caddy", "--listen", "127.0.0.1:8081", cwd=tmp_path)
    assert "http://shop.test:8081, http://www.shop.test:8081 {" in caddy.stdout
    assert "reverse_proxy 127.0.0.1:8080" in caddy.stdout


def test_proxy_snippet_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    write_config(tmp_path, SHOP)
    bad = cli("proxy", "snippet", "iis", cwd=tmp_path)
    assert bad.returncode == 2 and "nginx, apache, caddy" in bad.stderr
    bad = cli("proxy", "snippet", "nginx", "--listen", "localhost:80x", cwd=tmp_path)
    assert bad.returncode == 2 and "--listen" in bad.stderr and "Traceback" not in bad.output
    # the router on the port the web server takes: said, on stderr
    write_config(tmp_path, SHOP.replace("http_port = 8080", "http_port = 80"))
    clash = cli("proxy", "snippet", "nginx", cwd=tmp_path)
    assert clash.returncode == 0 and "one port cannot be held by both" in clash.stderr
    assert "listen 80;" in clash.stdout
