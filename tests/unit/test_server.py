"""Server check parsing, setup plans, proxy settings and router commands (pure)."""

from __future__ import annotations

import io
import tarfile

import pytest

from dockyard.config.loader import parse_config
from dockyard.config.model import ProxyConfig
from dockyard.errors import DockyardError
from dockyard.router import container as router
from dockyard.server import check
from dockyard.server.setup import Identity, install_docker_commands, state_dir_commands
from dockyard.state import proxy

BASE = '[app]\nname = "hello"\n[server]\nhost = "local"\n'

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:08AE 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:D2B4 0100007F:08AE 01 00000000:00000000 00:00000000 00000000     0        0 3 1
  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 0 0 0
"""


def test_listening_ports_from_proc_net() -> None:
    assert check.listening_ports(PROC_NET_TCP) == {80, 2222, 443}


def test_published_ports_from_docker_ps() -> None:
    text = "0.0.0.0:80->8080/tcp, :::80->8080/tcp, 0.0.0.0:443->8443/tcp, :::443->8443/tcp"
    assert check.published_ports(text) == {80, 443}
    assert check.published_ports("") == set()


def test_port_rows() -> None:
    rows = check.port_rows(ProxyConfig(), {80, 443, 22}, {443})
    assert [(r.check, r.level) for r in rows] == [("http port", "fail"), ("https port", "ok")]
    assert "dockyard-router" in rows[1].detail
    assert check.port_rows(ProxyConfig(), set(), set())[0].level == "ok"


@pytest.mark.parametrize(
    ("rc", "out", "err", "level", "words"),
    [
        (0, "20.10.24+dfsg1\n", "", "ok", "20.10.24"),
        (0, "19.03.1\n", "", "fail", "too old"),
        (127, "", "sh: docker: not found", "fail", "--install-docker"),
        (1, "", "permission denied while trying to connect to the Docker daemon socket", "fail",
         "docker group"),
        (1, "", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the "
         "docker daemon running?", "fail", "systemctl start docker"),
    ],
)
def test_docker_row(rc: int, out: str, err: str, level: str, words: str) -> None:
    row = check.docker_row(rc, out, err, "deploy")
    assert row.level == level
    assert words in row.detail + row.fix


def test_disk_row() -> None:
    df = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 1 %d 1%% /\n"
    assert check.disk_row(df % (50 * 1024 * 1024)).level == "ok"
    assert check.disk_row(df % (1024 * 1024)).level == "warn"
    assert check.disk_row(df % 1024).level == "fail"
    assert check.disk_row("garbage").level == "warn"


def test_state_dir_commands_for_root_and_others() -> None:
    [root_cmd] = state_dir_commands(Identity("root", 0))
    assert root_cmd.argv == ("install", "-d", "-m", "0750", "/var/lib/dockyard",
                             "/var/lib/dockyard/apps")
    [user_cmd] = state_dir_commands(Identity("deploy", 1000))
    assert user_cmd.argv[:6] == ("sudo", "-n", "install", "-d", "-o", "deploy")
    assert all(c.changes for c in (root_cmd, user_cmd))


def test_install_docker_uses_distribution_packages() -> None:
    cmds = install_docker_commands(Identity("root", 0))
    assert cmds[1].argv == ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                            "-q", "docker.io")
    assert install_docker_commands(Identity("u", 5))[0].argv[:2] == ("sudo", "-n")


def test_proxy_first_deploy_uses_the_file() -> None:
    cfg = parse_config(BASE + "[proxy]\nhttp_port = 8080\n")
    assert proxy.effective(cfg, None).http_port == 8080


def test_proxy_keys_left_out_take_the_servers_values() -> None:
    cfg = parse_config(BASE)
    server = ProxyConfig(http_port=8000, https_port=8443)
    assert proxy.effective(cfg, server) == server


def test_proxy_conflict_names_current_value_and_command() -> None:
    cfg = parse_config(BASE + "[proxy]\nhttp_port = 8080\nrouter_image = \"haproxy:3.0\"\n")
    with pytest.raises(DockyardError) as info:
        proxy.effective(cfg, ProxyConfig())
    err = info.value
    assert err.code == "DY030"
    assert "http_port = 8080" in err.message and "80" in err.message
    assert "dockyard router apply" in err.message
    assert any("router_image" in line for line in err.lines())


def test_router_apply_merges_explicit_keys_into_server_settings() -> None:
    cfg = parse_config(BASE + "[proxy]\nhttp_port = 8080\n")
    server = ProxyConfig(https_port=9443, tools_image="tools:1")
    new = proxy.applied(cfg, server)
    assert (new.http_port, new.https_port, new.tools_image) == (8080, 9443, "tools:1")
    assert proxy.changed_keys(server, new) == ["http_port"]
    assert proxy.changed_keys(None, new) == list(ProxyConfig.model_fields)


def test_proxy_settings_file_round_trip() -> None:
    cmd = proxy.write_command(ProxyConfig(http_port=81))
    assert cmd.stdin is not None and cmd.argv[1].endswith("/write-files.sh")  # atomic
    with tarfile.open(fileobj=io.BytesIO(cmd.stdin)) as tar:
        member = tar.extractfile("proxy.json")
        assert member is not None
        assert proxy.parse(member.read().decode()) == ProxyConfig(http_port=81)
    assert proxy.parse("") is None and proxy.parse("{broken") is None


def test_router_containers_publish_proxy_ports_and_are_labelled() -> None:
    settings = ProxyConfig(http_port=18080, https_port=18443, router_image="img")
    holder = list(router.run_holder(settings).argv)
    assert holder[:4] == ["docker", "run", "-d", "--name=dockyard-router"]
    assert "--publish=18080:8080" in holder and "--publish=18443:8443" in holder
    assert "--network=Dockyard" in holder and "--label=dockyard.role=router-netns" in holder
    assert "--label=dockyard.config=netns-1" in holder and "--restart=unless-stopped" in holder
    argv = list(router.run(settings, gid=7).argv)
    assert argv[:4] == ["docker", "run", "-d", "--name=dockyard-haproxy"]
    assert "--label=dockyard.role=router" in argv and "--restart=unless-stopped" in argv
    assert not any(a.startswith("--publish") for a in argv)
    assert argv[-2:] == ["--", "img"]
    assert "--volume=/var/lib/dockyard/router/etc:/usr/local/etc/haproxy:ro" in argv
    assert "--volume=/var/lib/dockyard/router/run:/run/dockyard" in argv
    assert "--group-add=7" in argv and "--network=container:dockyard-router" in argv
    # the successor takes the listening sockets over through the Runtime API socket
    taking = list(router.run(settings, gid=7, name=router.NEXT, take_over=True).argv)
    assert "--name=dockyard-haproxy-next" in taking
    assert taking[-2:] == ["-x", "/run/dockyard/admin.sock"]
    # the old one is never restarted by its policy once told to stop softly
    assert [c.argv[:3] for c in router.retire_old()] == [("docker", "update", "--restart=no"),
                                                         ("docker", "kill", "--signal=USR1")]


HOST = """--listen
LISTEN 0      511          0.0.0.0:80        0.0.0.0:* users:(("nginx",pid=812,fd=6),("nginx",pid=813,fd=6))
LISTEN 0      511             [::]:80           [::]:* users:(("nginx",pid=812,fd=7))
LISTEN 0      4096         0.0.0.0:443       0.0.0.0:* users:(("docker-proxy",pid=99,fd=4))
LISTEN 0      128        127.0.0.1:5432      0.0.0.0:*
--containers
traefik\t0.0.0.0:443->443/tcp, :::443->443/tcp
--networks
bridge\tbridge\t172.17.0.0/16
host\thost\t
none\tnull\t
blog_default\tbridge\t172.20.0.0/16
--firewall
Status: active
table inet filter
"""


def test_server_check_names_who_holds_a_port_and_recommends_a_way() -> None:
    facts = check.parse_host(HOST)
    assert facts.listeners[80] == ["nginx (pid 812)"]
    assert facts.containers == {443: "traefik"}
    assert facts.holder(443) == ("the container traefik", "docker")
    rows = check.port_rows(ProxyConfig(), {80, 443, 5432}, set(), facts)
    http, https = rows
    assert http.level == "fail" and http.detail == "80 is used by nginx (pid 812)"
    assert 'bind = "127.0.0.1"' in http.fix and "dockyard proxy snippet nginx" in http.fix
    assert "dockyard router apply" in http.fix
    assert https.detail == "443 is used by the container traefik"
    assert "choose another port" in https.fix
    apache = check.parse_host('--listen\nLISTEN 0 511 *:80 *:* users:(("apache2",pid=5,fd=4))\n')
    assert "dockyard proxy snippet apache" in check.port_rows(
        ProxyConfig(), {80}, set(), apache)[0].fix
    # the router itself, found by its container too
    mine = check.parse_host("--containers\ndockyard-router\t0.0.0.0:80->80/tcp\n")
    assert check.port_rows(ProxyConfig(), {80}, set(), mine)[0].level == "ok"


def test_server_check_lists_networks_and_the_firewall() -> None:
    facts = check.parse_host(HOST)
    row = check.network_row(facts)
    assert row.level == "ok" and "blog_default 172.20.0.0/16" in row.detail
    firewall = check.firewall_row(facts)
    assert firewall.level == "warn" and "ufw is active" in firewall.detail
    assert check.firewall_row(check.parse_host("--firewall\ntable ip nat\n")).level == "ok"


def test_server_check_follows_a_request_through_the_web_server_in_front() -> None:
    rows = check.chain_rows("shop.test 80 200 1.1_dockyard-router\nshop.test 443 none -\n"
                            "www.shop.test 80 404 -\nwww.shop.test 443 301 -\n", "apache")
    assert [(r.check, r.level) for r in rows] == [("chain shop.test", "ok"),
                                                  ("chain www.shop.test", "fail")]
    assert "port 80: 404, port 443: 301" in rows[1].detail
    assert "dockyard proxy snippet apache" in rows[1].fix
    assert check.chain_rows("nocurl\n")[0].level == "warn"
    from dockyard.router import config as rc

    assert 'http-response add-header Via "1.1 dockyard-router"' in rc.render(
        [], socket_gid=0, behind_proxy=True)
    assert "Via" not in rc.render([], socket_gid=0)


def test_server_check_warns_of_docker_networks_that_overlap_the_hosts_routes() -> None:
    facts = check.parse_host(HOST + "--routes\ndefault via 192.0.2.1 dev eth0\n"
                             "172.17.0.0/16 dev docker0 proto kernel scope link\n"
                             "172.20.0.0/14 dev wg0 scope link\n")
    assert check.overlaps(facts) == ["blog_default 172.20.0.0/16 and 172.20.0.0/14 on wg0"]
    assert check.network_row(facts).level == "warn"
    clean = check.parse_host(HOST + "--routes\n172.17.0.0/16 dev docker0 scope link\n")
    assert check.overlaps(clean) == [] and "none overlaps" in check.network_row(clean).detail
