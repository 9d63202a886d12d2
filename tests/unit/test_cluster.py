"""Several servers (issue 13) without a server: the [server] hosts grammar, the Swarm
builders (no secret in any argv, image by id, DNS round robin), the swarm facts' parsers,
and the router's cluster parts (retries per backend, ACME challenges passed to peers)."""

from __future__ import annotations

import json

import pytest

from dockyard.cluster import services as svc
from dockyard.cluster import swarm
from dockyard.config.loader import parse_config
from dockyard.errors import ConfigError
from dockyard.host.command import Answer
from dockyard.router import config as rc

HOSTS = '["ssh://root@10.0.0.1", "ssh://root@10.0.0.2:2222", "ssh://deploy@node-3"]'


def cluster_config(extra: str = "") -> str:
    return f'[app]\nname = "web"\n[server]\nhosts = {HOSTS}\n{extra}'


def test_hosts_make_a_cluster_whose_first_host_is_the_primary() -> None:
    cfg = parse_config(cluster_config())
    assert cfg.server.cluster and cfg.server.host == "ssh://root@10.0.0.1"
    assert cfg.server.all_hosts[1:] == ["ssh://root@10.0.0.2:2222", "ssh://deploy@node-3"]
    one = parse_config('[app]\nname = "web"\n[server]\nhost = "ssh://root@10.0.0.1"\n')
    assert not one.server.cluster and one.server.all_hosts == ["ssh://root@10.0.0.1"]
    single = parse_config('[app]\nname = "web"\n[server]\nhosts = ["ssh://root@10.0.0.1"]\n')
    assert not single.server.cluster  # one entry: one server, as with host


@pytest.mark.parametrize(("server", "words"), [
    ('hosts = []', "lists no server"),
    ('hosts = ["ssh://a", "ssh://a"]', "listed twice"),
    ('hosts = ["ssh://a", "local"]', "cannot be one of several"),
    ('host = "ssh://a"\nhosts = ["ssh://b"]', "not both"),
    ('hosts = ["ssh://a", "ssh://-oProxyCommand=x"]', "host"),
    ('hosts = "ssh://a"', "list"),
])
def test_bad_hosts_say_what_to_write(server: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f'[app]\nname = "web"\n[server]\n{server}\n')
    assert words in info.value.message and "\n" not in info.value.message


def test_replicas_and_response_timeout() -> None:
    cfg = parse_config(cluster_config('[web]\nreplicas = 3\nresponse_timeout = "4s"\n'))
    assert cfg.web.replicas == 3 and cfg.web.response_timeout == 4.0
    for bad in ("replicas = 0", "replicas = 17", 'replicas = "3"', 'response_timeout = "0s"'):
        with pytest.raises(ConfigError):
            parse_config(cluster_config(f"[web]\n{bad}\n"))


def spec(**changes: object) -> svc.ServiceSpec:
    base = svc.ServiceSpec("web", "web", 4, "sha256:" + "a" * 64, "web", "web-web-v4-0a1b", 3,
                           "web-env-v4-0a1b", ["httpd", "-f"], 5.0)
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_a_service_runs_by_image_id_with_dns_round_robin_and_its_env_as_a_secret() -> None:
    argv = list(svc.create(spec(), "why").argv)
    assert argv[:3] == ["docker", "service", "create"]
    assert "--endpoint-mode=dnsrr" in argv and "--replicas=3" in argv
    assert "--network=web" in argv and "--no-resolve-image" in argv
    assert "--secret=source=web-env-v4-0a1b,target=dockyard-env,mode=0444" in argv
    assert not any(a.startswith(("--env", "-e")) for a in argv)  # nothing of the env
    dash = argv.index("--")
    assert argv[dash + 1].startswith("sha256:")  # by id: Swarm never asks a registry
    assert argv[dash + 2:dash + 4] == ["-c", svc.WRAPPER]
    assert argv[-2:] == ["httpd", "-f"]
    for label in ("dockyard.app=web", "dockyard.process=web", "dockyard.release=4"):
        assert f"--label={label}" in argv and f"--container-label={label}" in argv


@pytest.mark.parametrize("value", ["plain", "it's a $HOME `x` \"q\"", "a b\tc", "", "=;&|"])
def test_the_env_secret_is_sourced_back_to_the_same_values(value: str) -> None:
    import subprocess

    body = svc.env_script({"KEY": value, "OTHER": "2"})
    out = subprocess.run(["sh", "-c", 'set -a; . /dev/stdin; set +a; printf %s "$KEY"'],
                         input=body, capture_output=True, check=True).stdout.decode()
    assert out == value


def test_the_env_secret_travels_on_stdin_only() -> None:
    body = svc.env_script({"PASSWORD": "hunter2-secret"})
    cmd = svc.create_secret("web-env-v4-0a1b", "web", 4, body, 1)
    assert "hunter2-secret" not in cmd.line and cmd.stdin == body
    assert cmd.argv[-1] == "-" and "<environment, 1 keys>" in cmd.line


def test_swarm_join_reads_its_token_from_stdin() -> None:
    cmd = swarm.join("SWMTKN-1-secret", "10.0.0.1", "10.0.0.2", "manager")
    assert "SWMTKN" not in cmd.line and cmd.stdin == b"SWMTKN-1-secret\n"
    assert cmd.argv[-2:] == ("10.0.0.1:2377", "10.0.0.2")


def test_membership_and_nodes_are_parsed() -> None:
    info = json.dumps({"LocalNodeState": "active", "NodeID": "n1", "ControlAvailable": True,
                       "Cluster": {"ID": "c1"}, "NodeAddr": "10.0.0.1"})
    seen = swarm._membership(Answer(0, f"{info}\n203.0.113.9 50000 10.0.0.1 22\n"))
    assert seen.active and seen.manager and seen.ssh_addr == "10.0.0.1"
    assert not swarm._membership(Answer(1, "", "Cannot connect")).active
    nodes = swarm._nodes(Answer(0, json.dumps([{
        "ID": "n1", "Description": {"Hostname": "a"}, "Status": {"State": "ready",
                                                                  "Addr": "10.0.0.1"},
        "Spec": {"Role": "manager", "Availability": "active",
                 "Labels": {swarm.HOST_LABEL: "ssh://root@10.0.0.1"}},
        "ManagerStatus": {"Leader": True}}])))
    assert nodes[0].host == "ssh://root@10.0.0.1" and nodes[0].leader
    assert swarm._nodes(Answer(1, "")) == []


def test_task_lists_are_parsed() -> None:
    text = "web-web-v4-0a1b\tweb\t4\tweb-web-v4-0a1b.1\tnode-a\tRunning 2 minutes ago\n"
    fact = svc.app_tasks("web")
    tasks = fact.parse(Answer(0, text + "garbage\n"))
    assert [(t.process, t.release, t.node) for t in tasks] == [("web", 4, "node-a")]


def test_every_backend_passes_unknown_acme_challenges_to_the_peer_routers() -> None:
    text = rc.render([], socket_gid=0)
    acme = text[text.index("\nbackend acme\n"):text.index("\nbackend acme_here")]
    assert "retry-on conn-failure 404 502 503 504" in acme and "option redispatch 1" in acme
    assert all(f"server {p} 127.0.0.1:1 disabled" in acme for p in rc.peer_names())
    assert f"http-request set-header {rc.PEER_HEADER} 1" in acme
    frontend = text[text.index("frontend http"):text.index("frontend https")]
    # a passed-on challenge goes to this node's own client only: no loop between routers
    assert frontend.index("use_backend acme_here") < frontend.index("use_backend acme if")


def test_a_node_is_named_as_written_or_by_its_address() -> None:
    from dockyard.cluster import nodes
    from dockyard.errors import DockyardError

    cfg = parse_config(cluster_config())
    assert nodes.entry_of(cfg, "ssh://root@10.0.0.2:2222") == "ssh://root@10.0.0.2:2222"
    assert nodes.entry_of(cfg, "10.0.0.2") == "ssh://root@10.0.0.2:2222"
    assert nodes.entry_of(cfg, "node-3") == "ssh://deploy@node-3"
    with pytest.raises(DockyardError) as info:
        nodes.entry_of(cfg, "10.0.0.9")
    assert info.value.code == "DY080" and "ssh://root@10.0.0.1" in info.value.message


def test_cluster_init_needs_several_hosts() -> None:
    from dockyard.cluster import nodes
    from dockyard.errors import DockyardError

    one = parse_config('[app]\nname = "web"\n[server]\nhost = "ssh://root@10.0.0.1"\n')
    with pytest.raises(DockyardError) as info:
        nodes.init(one, None, print)  # type: ignore[arg-type]  # refused before connecting
    assert info.value.code == "DY081"


def test_one_server_routes_are_unchanged_and_cluster_routes_keep_their_settings() -> None:
    one = rc.Route(app="web", slot=1, port=8080)
    assert set(json.loads(one.to_json())) == {"app", "slot", "port", "domains", "health_path",
                                              "health_interval_ms", "health_timeout_ms",
                                              "servers", "tls", "site"}
    many = rc.Route(app="web", slot=1, port=8080, cluster=True, response_timeout_ms=2500,
                    servers={"slot01-web1": "tasks.web-web-v2-0a1b"})
    text = rc.render([many], socket_gid=0)
    assert "server slot01-web1 tasks.web-web-v2-0a1b:8080" in text
