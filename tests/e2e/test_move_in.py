"""Moving in next to what a server already runs (issue 17): a host nginx serving a "blog"
keeps serving it, and forwards the app's names to Dockyard's router, which listens on
127.0.0.1 only."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HTTP_PORT,
    HTTPS_PORT,
    REPO,
    SSH_HOST,
    bridge_gateway,
    get,
    hello_config,
    set_version,
    sh,
    zd_probe,
)
from tests.helpers import dockyard
from tests.loadcheck import Load

pytestmark = pytest.mark.e2e

NGINX_PORT = 18380


def nginx_conf(root: Path) -> Path:
    """A host nginx as a user has one: a blog on its own, and sites-enabled included."""
    (root / "blog").mkdir(parents=True)
    (root / "blog" / "index.html").write_text("the blog\n")
    (root / "sites").mkdir()
    conf = root / "nginx.conf"
    conf.write_text(f"""\
daemon off;
user root;  # its workers read the test's private directory
worker_processes 1;
error_log stderr warn;
pid {root}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    server {{
        listen 127.0.0.1:{NGINX_PORT};
        server_name blog.test;
        root {root}/blog;
    }}
    include {root}/sites/*.conf;
}}
""")
    return conf


def wait_for(port: int, host: str, expect: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = get(port, host)
            if last == (200, expect):
                return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"{host} on {port} did not answer {expect!r}: {last}")


def listeners(port: int) -> list[str]:
    out = sh("ss", "-Hltn", f"sport = :{port}").stdout
    return sorted({line.split()[3].rsplit(":", 1)[0] for line in out.splitlines() if line})


@pytest.mark.exclusive
def test_dockyard_behind_a_host_nginx_that_keeps_its_blog(alone: None, tmp_path: Path) -> None:
    # something Dockyard did not create: it must survive deploy, router apply and remove
    sh("docker", "network", "create", "outsider-net")
    sh("docker", "run", "-d", "--name", "outsider", "--network", "outsider-net",
       "dockyard-testbed/tools", "sleep", "3600")
    outsider = sh("docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}}", "outsider").stdout
    nginx: subprocess.Popen[str] | None = None
    try:
        # the server as Dockyard finds it: nginx serves a blog on the port the router wants
        conf = nginx_conf(tmp_path / "nginx")
        nginx = subprocess.Popen(["/usr/sbin/nginx", "-c", str(conf)], text=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(NGINX_PORT, "blog.test", "the blog")
        cfg = hello_config(tmp_path / "app", name="behind")
        first = cfg.parent / "first.toml"  # the file as a newcomer writes it: default bind
        first.write_text(cfg.read_text().replace(f"http_port = {HTTP_PORT}",
                                                 f"http_port = {NGINX_PORT}"))
        check = dockyard("-c", str(first), "server", "check", env={"COLUMNS": "300"})
        assert check.returncode != 0
        assert f"{NGINX_PORT} is used by nginx (pid {nginx.pid})" in check.stdout, check.output
        assert 'bind = "127.0.0.1"' in check.stdout
        assert "dockyard proxy snippet nginx" in check.stdout

        # the way it recommends: the router on 127.0.0.1, nginx in front
        cfg.write_text(cfg.read_text().replace("[proxy]\n", '[proxy]\nbind = "127.0.0.1"\n'))
        run = dockyard("-c", str(cfg), "router", "apply", "--yes", timeout=120)
        assert run.returncode == 0, run.output
        run = dockyard("-c", str(cfg), "deploy", timeout=300)
        assert run.returncode == 0, run.output
        assert listeners(HTTP_PORT) == ["127.0.0.1"]  # the router is this machine's only
        through = ("-c", str(cfg), "server", "check", "--through", str(NGINX_PORT))
        check = dockyard(*through, env={"COLUMNS": "300"})
        assert "chain behind.test" in check.stdout and "no request reached the router" in \
            check.stdout, check.output  # nginx does not forward the name yet
        snippet = dockyard("-c", str(cfg), "proxy", "snippet", "nginx", "--listen",
                           f"127.0.0.1:{NGINX_PORT}")
        assert snippet.returncode == 0, snippet.output
        (tmp_path / "nginx" / "sites" / "behind.conf").write_text(snippet.stdout)
        test = subprocess.run(["/usr/sbin/nginx", "-t", "-c", str(conf)], capture_output=True,
                              text=True, timeout=30)
        assert test.returncode == 0, test.stderr
        nginx.send_signal(signal.SIGHUP)  # nginx -s reload
        wait_for(NGINX_PORT, "behind.test", "hello v1")
        assert get(NGINX_PORT, "blog.test") == (200, "the blog")
        check = dockyard(*through, env={"COLUMNS": "300"})
        assert check.returncode == 0, check.output  # the whole chain, checked on the server
        assert (f"a request on port {NGINX_PORT} reaches the router through the web server in "
                "front") in check.stdout

        # 3 deploys under the reference probe, through nginx; the blog answers throughout
        set_version(cfg, "v2")
        loop = " && ".join([f"{shlex.quote(sys.executable)} -m dockyard -c {cfg} deploy"] * 3)
        with Load(NGINX_PORT, "blog.test", threads=1, max_seconds=400, posts=False) as blog:
            probe = subprocess.run([*zd_probe(), "--url", f"http://127.0.0.1:{NGINX_PORT}/",
                                    "--host", "behind.test", "--threads", "4",
                                    "--max-seconds", "400", "--", "sh", "-c", loop],
                                   capture_output=True, text=True, timeout=480, cwd=REPO)
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        assert probe.returncode == 0 and result["failed"] == 0, (result, probe.stderr[-2000:])
        assert result["command_exit"] == 0 and result["ok"] > 50, result
        assert blog.report.failed == 0 and blog.report.ok > 10, blog.report.summary()
        print(f"through nginx: app {result['ok']} ok, {result['failed']} failed, longest gap "
              f"{result['max_gap_s']} s; blog {blog.report.summary()}")
        assert get(NGINX_PORT, "behind.test") == (200, "hello v2")

        run = dockyard("-c", str(cfg), "router", "apply", "--yes", timeout=120)
        assert run.returncode == 0, run.output
        run = dockyard("-c", str(cfg), "remove", "--yes", timeout=120)
        assert run.returncode == 0, run.output
        assert get(NGINX_PORT, "blog.test") == (200, "the blog")
        assert sh("docker", "inspect", "-f", "{{.Id}} {{.State.StartedAt}}",
                  "outsider").stdout == outsider
        assert sh("docker", "network", "inspect", "outsider-net").returncode == 0
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=30)
        sh("docker", "rm", "-f", "outsider", check=False)
        sh("docker", "network", "rm", "outsider-net", check=False)


EXISTING = re.compile(r"^```sh existing\n(.*?)^```$", re.S | re.M)


@pytest.mark.exclusive
def test_the_guides_chapter_on_a_server_that_already_runs_things(alone: None,
                                                                 tmp_path: Path) -> None:
    """docs/guide.md's chapter 9, run as written, with a host nginx standing in for the
    server's own (its files under a test directory instead of /etc/nginx): Dockyard behind
    it, then in front of it."""
    root = tmp_path / "etc-nginx"
    (root / "sites-available").mkdir(parents=True)
    (root / "sites-enabled").mkdir()
    work = tmp_path / "nginx"
    conf = nginx_conf(work)
    (root / "sites-available" / "blog").write_text(
        f"server {{\n    listen 127.0.0.1:{NGINX_PORT};\n    server_name blog.test;\n"
        f"    root {work}/blog;\n}}\n")
    (root / "sites-enabled" / "blog").symlink_to("../sites-available/blog")
    text = conf.read_text()
    blog = text[text.index("    server {"):text.index("    include")]
    conf.write_text(text.replace(blog, "").replace(f"include {work}/sites/*.conf;",
                                                   f"include {root}/sites-enabled/*;"))
    gateway = bridge_gateway()
    app = tmp_path / "app"
    shutil.copytree(REPO / "examples" / "hello", app, ignore=shutil.ignore_patterns(
        "dockyard.toml"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dockyard").write_text(f'#!/bin/sh\nexec {sys.executable} -m dockyard "$@"\n')
    (bin_dir / "dockyard").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "COLUMNS": "200",
           "PYTHONPATH": str(REPO / "src")}
    nginx = subprocess.Popen(["/usr/sbin/nginx", "-c", str(conf)], text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(NGINX_PORT, "blog.test", "the blog")
        blocks = EXISTING.findall((REPO / "docs" / "guide.md").read_text())
        assert len(blocks) == 5
        for number, block in enumerate(blocks, 1):
            # blocks 1-3: nginx in front on its port; 4-5: the router in front on its port
            front = NGINX_PORT if number <= 3 else HTTP_PORT
            for old, new in [
                ("ssh://root@203.0.113.10", SSH_HOST),
                ("shop.example.com", "shop.test"),
                ("blog.example.com", "blog.test"),
                ("tls = false\nTOML", 'tls = false\n\n[build]\n'
                 'args = { BASE = "dockyard-testbed/tools" }\nTOML'),
                ("[proxy]\nbind", '[proxy]\nrouter_image = "dockyard-testbed/router"\n'
                 'tools_image = "dockyard-testbed/tools"\nbind'),
                ("http_port = 8080", f"http_port = {HTTP_PORT}"),
                ("https_port = 8443", f"https_port = {HTTPS_PORT}"),
                ("http_port = 80/", f"http_port = {HTTP_PORT}/"),
                ("https_port = 443/", f"https_port = {HTTPS_PORT}/"),
                ("/etc/nginx/", f"{root}/"),
                ("listen 80;/listen 172.17.0.1:8081;",
                 f"listen 127.0.0.1:{NGINX_PORT};/listen {gateway}:{FRONT_PORT + 1};"),
                ("host:8081", f"host:{FRONT_PORT + 1}"),
                ("proxy snippet nginx >", f"proxy snippet nginx --listen 127.0.0.1:{NGINX_PORT} >"),
                ("nginx -t && systemctl reload nginx",
                 f"/usr/sbin/nginx -t -c {conf} && kill -HUP {nginx.pid}"),
                # a reload returns before nginx's new workers answer: wait for them (bounded)
                ("curl -fsS http://shop.test/",
                 f"curl() {{ command curl --connect-to shop.test:80:127.0.0.1:{front} "
                 f"--connect-to blog.test:80:127.0.0.1:{front} \"$@\"; }}\n"
                 "for _ in $(seq 100); do curl -fsS http://shop.test/ | grep -q hello "
                 "&& break; sleep 0.2; done\ncurl -fsS http://shop.test/"),
                ("curl -fsS http://blog.test/",
                 f"curl --connect-to blog.test:80:127.0.0.1:{front} -fsS http://blog.test/"),
            ]:
                block = block.replace(old, new)
            run = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=app, env=env,
                                 capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, (
                f"chapter 9 block {number} failed (exit {run.returncode}):\n{block}\n--- stdout\n"
                f"{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}")
            if number == 1:  # before Dockyard: the check names nothing of its own yet
                assert "docker networks" in run.stdout and "firewall" in run.stdout
            if number == 3:
                assert run.stdout.strip().endswith("hello v1"), run.stdout
                assert get(NGINX_PORT, "blog.test") == (200, "the blog")
                assert listeners(HTTP_PORT) == ["127.0.0.1"]
            if number == 5:  # the router in front: the blog as a site, the shop as an app
                assert run.stdout.strip().splitlines()[-2:] == ["the blog", "hello v1"], run.stdout
                gap = re.search(r"real\s+(\d+)m([\d.]+)s", run.stderr)
                assert gap, run.stderr
                print(f"router apply (the gap on the port): {float(gap.group(2)):.2f}s")
                assert listeners(HTTP_PORT) != ["127.0.0.1"]
        assert get(HTTP_PORT, "blog.test") == (200, "the blog")
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)


def test_dockyard_in_front_serves_an_existing_blog_as_a_site(clean: None, tmp_path: Path,
                                                             issuer_root: Path) -> None:
    """The router takes the ports; the blog nginx already served moves to the server's
    address on Docker's bridge and is routed as a site, with HTTPS, next to an app."""
    from tests.e2e.test_https import https_get, tls_config

    gateway = bridge_gateway()
    root = tmp_path / "nginx"
    conf = nginx_conf(root)
    conf.write_text(conf.read_text().replace(f"listen 127.0.0.1:{NGINX_PORT};",
                                             f"listen {gateway}:{FRONT_PORT};")
                    .replace("server_name blog.test;", "server_name frontblog.test;"))
    nginx = subprocess.Popen(["/usr/sbin/nginx", "-c", str(conf)], text=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cfg = tls_config(tmp_path / "app", "frontapp", "frontapp.test")
    try:
        wait_for_address(gateway, FRONT_PORT)
        run = dockyard("-c", str(cfg), "router", "apply", "--yes", timeout=120)
        assert run.returncode == 0, run.output
        assert dockyard("-c", str(cfg), "deploy", timeout=300).returncode == 0
        run = dockyard("-c", str(cfg), "site", "add", "frontblog.test", "--to",
                       f"host:{FRONT_PORT}", timeout=300)
        assert run.returncode == 0, run.output
        assert get(HTTP_PORT, "frontblog.test")[0] == 301  # HTTPS from the router's certificate
        status, body, cert = https_get("frontblog.test", issuer_root)
        assert (status, body) == (200, "the blog\n")
        assert dict(x[0] for x in cert["subject"])["commonName"] == "frontblog.test"  # type: ignore[index]
        listed = json.loads(dockyard("-c", str(cfg), "--json", "site", "list").stdout)
        assert [(s["domain"], s["to"], s["https"]) for s in listed] == [
            ("frontblog.test", f"host:{FRONT_PORT}", True)]

        # 3 deploys of the app under load: 0 failed; the blog answers throughout
        set_version(cfg, "v2")
        loop = " && ".join([f"{shlex.quote(sys.executable)} -m dockyard -c {cfg} deploy"] * 3)
        answers: list[object] = []
        stop = threading.Event()

        def blog_over_https() -> None:  # bounded: stops with the deploys, or after 400 s
            deadline = time.monotonic() + 400
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    answers.append(https_get("frontblog.test", issuer_root)[:2])
                except OSError as exc:
                    answers.append(type(exc).__name__)

        reader = threading.Thread(target=blog_over_https, daemon=True)
        reader.start()
        try:
            probe = subprocess.run([*zd_probe(), "--url", f"http://127.0.0.1:{HTTP_PORT}/",
                                    "--host", "frontapp.test", "--threads", "4",
                                    "--max-seconds", "400", "--", "sh", "-c", loop],
                                   capture_output=True, text=True, timeout=480, cwd=REPO)
        finally:
            stop.set()
            reader.join(timeout=30)
        result = json.loads(probe.stdout.strip().splitlines()[-1])
        assert probe.returncode == 0 and result["failed"] == 0, (result, probe.stderr[-2000:])
        assert result["command_exit"] == 0 and result["ok"] > 50, result
        assert len(answers) > 10 and set(map(str, answers)) == {str((200, "the blog\n"))}, (
            len(answers), set(map(str, answers)))
        print(f"router in front: app {result['ok']} ok, {result['failed']} failed; blog over "
              f"HTTPS {len(answers)} answers, all 200")

        # a container Dockyard did not start, on a network of its own, as a site: the router
        # joins that network; the container is not touched
        sh("docker", "network", "create", "frontside-net")
        sh("docker", "run", "-d", "--name", "frontside", "--network", "frontside-net",
           "dockyard-testbed/static")
        started = sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "frontside").stdout
        run = dockyard("-c", str(cfg), "site", "add", "frontside.test", "--to",
                       "frontside:8080", "--no-tls", timeout=120)
        assert run.returncode == 0, run.output
        assert get(HTTP_PORT, "frontside.test") == (200, "hello from nginx")
        run = dockyard("-c", str(cfg), "site", "remove", "frontside.test", timeout=120)
        assert run.returncode == 0, run.output
        assert sh("docker", "inspect", "-f", "{{.State.StartedAt}}", "frontside").stdout == started

        run = dockyard("-c", str(cfg), "site", "remove", "frontblog.test", timeout=120)
        assert run.returncode == 0, run.output
        assert get(HTTP_PORT, "frontblog.test")[0] == 404
        assert nginx.poll() is None  # the service itself is not touched
        missing = dockyard("-c", str(cfg), "site", "remove", "frontblog.test")
        assert missing.returncode == 2 and "not a site" in missing.stderr
    finally:
        for name in ("frontblog.test", "frontside.test"):
            dockyard("-c", str(cfg), "site", "remove", name, timeout=120)
        sh("docker", "rm", "-f", "frontside", check=False)
        sh("docker", "network", "disconnect", "-f", "frontside-net", "dockyard-router",
           check=False)
        sh("docker", "network", "rm", "frontside-net", check=False)
        nginx.terminate()
        nginx.wait(timeout=30)


FRONT_PORT = 18381


def wait_for_address(address: str, port: int, seconds: float = 30) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answers on {address}:{port}")


APACHE_MODULES = ("mpm_event", "authz_core", "proxy", "proxy_http", "proxy_wstunnel",
                  "headers", "rewrite")


@pytest.mark.parametrize("kind", ["apache", "caddy"])
def test_the_apache_and_caddy_snippets_are_valid_as_they_are(tmp_path: Path, kind: str) -> None:
    """What `dockyard proxy snippet apache|caddy` prints passes the server's own check (nginx's
    is checked, and served through, above)."""
    cfg = tmp_path / "dockyard.toml"  # offline: no server needed
    cfg.write_text('[app]\nname = "snip"\n[server]\nhost = "local"\n[build]\nimage = "x/y"\n'
                   '[web]\nport = 8080\ndomains = ["snip.test", "www.snip.test"]\ntls = false\n'
                   '[proxy]\nbind = "127.0.0.1"\nhttp_port = 8080\nhttps_port = 8443\n')
    for listen in ([], ["--listen", "127.0.0.1:18382"]):
        run = dockyard("-c", str(cfg), "proxy", "snippet", kind, *listen)
        assert run.returncode == 0, run.output
        site = tmp_path / f"{kind}-{len(listen)}.conf"
        site.write_text(run.stdout)
        if kind == "apache":
            conf = tmp_path / "apache2.conf"
            modules = "".join(f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"
                              for m in APACHE_MODULES)
            conf.write_text(f"ServerRoot {tmp_path}\nPidFile {tmp_path}/apache.pid\n"
                            f"ErrorLog /dev/stderr\n{modules}"
                            + ("Listen 80\n" if not listen else "") + f"Include {site}\n")
            check = subprocess.run(["/usr/sbin/apache2", "-t", "-f", str(conf)],
                                   capture_output=True, text=True, timeout=60)
        else:
            check = subprocess.run(["/usr/bin/caddy", "validate", "--adapter", "caddyfile",
                                    "--config", str(site)], capture_output=True, text=True,
                                   timeout=60, env={**os.environ, "HOME": str(tmp_path),
                                                    "XDG_DATA_HOME": str(tmp_path)})
        assert check.returncode == 0, (run.stdout, check.stdout, check.stderr)
