"""The real flows (deploy, rollback, restart, env, domains, TLS, remove, accessories) run
against the fake server (tests/fake.py): no Docker, no SSH, no waiting, many cases.

Each case checks what a person would check on a real server: which container the router
sends requests to, what the release records say, what was left behind, what the audit log
holds, and that a failure at any point leaves a serving release.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dockyard.config.loader import parse_config
from dockyard.config.model import Config
from dockyard.deploy import deploy as flows
from dockyard.deploy import domains, status
from dockyard.deploy.progress import Progress
from dockyard.deploy.remove import remove_app
from dockyard.docker import networks
from dockyard.errors import DockyardError, HostError
from dockyard.host.runner import Invocation, Runner
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.router.ensure import recreate_router
from dockyard.state import audit, paths, snapshot
from dockyard.state.releases import read_state
from tests.fake import Behavior, FakeHost, FakeServer
from tests.helpers import REPO

HELLO = REPO / "examples" / "hello"
PROXY = ('[proxy]\nrouter_image = "dockyard-testbed/router"\n'
         'tools_image = "dockyard-testbed/tools"\n')


def config(name: str = "hello", *, extra: str = "", web: str = "", proxy: str = PROXY,
           domain: str | None = None) -> Config:
    return parse_config(
        f'[app]\nname = "{name}"\n[server]\nhost = "ssh://root@fake:22"\n'
        f'[build]\ncontext = "{HELLO}"\n'
        f'[web]\nport = 8080\ndomains = ["{domain or name + ".test"}"]\ntls = false\n{web}'
        f'[env]\nGREETING = "hi"\n{extra}{proxy}')


def runner(server: FakeServer, *, app: str = "hello", command: str = "deploy",
           dry_run: bool = False, explain: bool = False) -> Runner:
    return Runner(FakeHost(server), invocation=Invocation(command, user="tester", app=app),
                  dry_run=dry_run, explain=explain, out=io.StringIO())


def deploy(server: FakeServer, cfg: Config, **kwargs: object) -> flows.Result:
    return flows.deploy(runner(server, app=cfg.app.name, **kwargs), cfg, HELLO,  # type: ignore[arg-type]
                        Progress(quiet=True))


def served(server: FakeServer, host: str) -> list[str]:
    return server.served(host)


def state(server: FakeServer, app: str = "hello"):  # type: ignore[no-untyped-def]
    return runner(server, app=app).read_one(read_state(app))


def web_containers(server: FakeServer, app: str = "hello") -> list[str]:
    return sorted(c.name for c in server.app_containers(app)
                  if c.labels.get("dockyard.process") == "web")


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


# -- the happy paths --------------------------------------------------------------------------

def test_first_deploy_on_a_bare_server(server: FakeServer) -> None:
    result = deploy(server, config())
    assert result.release.name == "v1"
    [web] = web_containers(server)
    assert web.startswith("hello-web-v1-") and served(server, "hello.test") == [web]
    assert f"{paths.ROOT}/apps/hello/route.json" in server.files
    assert server.read(f"{paths.ROOT}/apps/hello/current") == "1\n"
    assert state(server).live is not None and state(server).live.outcome == "live"
    assert "hello" in server.networks and server.router_running
    commands = [e["command"] for e in server.audit()]
    assert any("docker run -d --name=dockyard-router" in c for c in commands)
    assert all(e["exit"] == 0 for e in server.audit())


def test_a_redeploy_switches_and_retires_the_old_release(server: FakeServer) -> None:
    deploy(server, config())
    old = web_containers(server)
    result = deploy(server, config())
    assert result.release.name == "v2"
    [web] = web_containers(server)
    assert web not in old and served(server, "hello.test") == [web]
    releases = {r.name: r.outcome for r in state(server).releases}
    assert releases == {"v1": "superseded", "v2": "live"}
    retired = [e for e in server.audit() if e["command"].startswith("docker stop")]
    assert retired and old[0] in retired[0]["command"]  # by the retirement, in the audit log


def test_a_redeploy_costs_four_round_trips(server: FakeServer) -> None:
    deploy(server, config())
    before = server.round_trips
    deploy(server, config())
    assert server.round_trips - before == 4  # lock + facts, build, start, switch


def test_rollback_goes_back_to_the_previous_image_and_environment(server: FakeServer) -> None:
    deploy(server, config())
    first_image = server.images["dockyard/hello:v1"]
    deploy(server, config())
    result = flows.rollback(runner(server, command="rollback"), config(), Progress(quiet=True),
                            None)
    assert result.release.name == "v3" and result.release.rollback_of == 1
    assert server.images["dockyard/hello:v3"] == first_image
    [web] = web_containers(server)
    assert web.startswith("hello-web-v3-") and served(server, "hello.test") == [web]


def test_rollback_without_a_previous_release_says_so(server: FakeServer) -> None:
    deploy(server, config())
    with pytest.raises(DockyardError) as info:
        flows.rollback(runner(server), config(), Progress(quiet=True), None)
    assert info.value.code == "DY054"


def test_rollback_to_a_pruned_image_says_deploy_instead(server: FakeServer) -> None:
    deploy(server, config())
    deploy(server, config())
    del server.images["dockyard/hello:v1"]
    with pytest.raises(DockyardError) as info:
        flows.rollback(runner(server), config(), Progress(quiet=True), 1)
    assert info.value.code == "DY054" and "no longer on the server" in info.value.message


def test_restart_replaces_the_containers_of_the_same_release(server: FakeServer) -> None:
    deploy(server, config())
    old = web_containers(server)
    result = flows.restart(runner(server, command="restart"), config(), Progress(quiet=True))
    [web] = web_containers(server)
    assert result.release.name == "v1" and web != old[0] and web.startswith("hello-web-v1-")
    assert served(server, "hello.test") == [web]


def test_an_env_change_is_a_release_of_the_same_image(server: FakeServer) -> None:
    deploy(server, config())
    result, values = flows.env_release(runner(server, command="env set"), config(),
                                       Progress(quiet=True), lambda env: {**env, "A": "1"},
                                       restart=True)
    assert result is not None and result.release.kind == "env" and values == {"A": "1"}
    assert server.read(f"{paths.ROOT}/apps/hello/env.server") == "A=1\n"
    assert "A=1" in server.read(f"{paths.ROOT}/apps/hello/env/v2.env")
    assert server.images["dockyard/hello:v2"] == server.images["dockyard/hello:v1"]


def test_env_changes_keep_the_names_of_secrets_next_to_the_values(server: FakeServer) -> None:
    deploy(server, config())
    flows.env_release(runner(server), config(), Progress(quiet=True),
                      lambda env: {**env, "TOKEN": "t0ken-value"}, restart=True,
                      secret={"TOKEN"})
    flows.env_release(runner(server), config(), Progress(quiet=True),
                      lambda env: {**env, "GREETING": "hello"}, restart=True,
                      plain={"GREETING"})
    assert server.read(f"{paths.ROOT}/apps/hello/env.secrets") == "TOKEN\n"
    assert "GREETING=hello" in server.read(f"{paths.ROOT}/apps/hello/env.server")
    flows.env_release(runner(server), config(), Progress(quiet=True),
                      lambda env: {k: v for k, v in env.items() if k != "TOKEN"}, restart=False)
    assert server.read(f"{paths.ROOT}/apps/hello/env.secrets") == ""


def test_an_env_change_without_restart_is_only_stored(server: FakeServer) -> None:
    deploy(server, config())
    result, _ = flows.env_release(runner(server), config(), Progress(quiet=True),
                                  lambda env: {**env, "A": "1"}, restart=False)
    assert result is None and [r.name for r in state(server).releases] == ["v1"]
    view = status.app_view(runner(server), config())
    assert view.env == "env changed, not applied"


def test_env_set_before_the_first_deploy_is_stored_for_it(server: FakeServer) -> None:
    result, _ = flows.env_release(runner(server), config(), Progress(quiet=True),
                                  lambda env: {**env, "A": "1"}, restart=True)
    assert result is None and server.read(f"{paths.ROOT}/apps/hello/env.server") == "A=1\n"
    deploy(server, config())
    assert "A=1" in server.read(f"{paths.ROOT}/apps/hello/env/v1.env")


def test_rollback_brings_the_old_environment_back(server: FakeServer) -> None:
    deploy(server, config())
    flows.env_release(runner(server), config(), Progress(quiet=True),
                      lambda env: {**env, "A": "2"}, restart=True)
    flows.rollback(runner(server), config(), Progress(quiet=True), 1)
    assert server.read(f"{paths.ROOT}/apps/hello/env.server") == ""


# -- domains and TLS --------------------------------------------------------------------------

def test_domains_are_added_and_removed_at_once(server: FakeServer) -> None:
    deploy(server, config())
    names, _ = domains.change(runner(server), config(), Progress(quiet=True),
                              add=["www.hello.test"], remove=[])
    assert names == ["hello.test", "www.hello.test"]
    assert served(server, "www.hello.test") == web_containers(server)
    names, _ = domains.change(runner(server), config(), Progress(quiet=True), add=[],
                              remove=["www.hello.test"])
    assert names == ["hello.test"] and served(server, "www.hello.test") == []
    assert "www.hello.test" not in server.read(f"{paths.ROOT}/router/etc/hosts.map")


def test_a_name_of_another_app_is_refused_and_nothing_changes(server: FakeServer) -> None:
    deploy(server, config())
    deploy(server, config("blog", domain="blog.test"))
    before = dict(server.files)
    with pytest.raises(DockyardError) as info:
        domains.change(runner(server), config(), Progress(quiet=True), add=["blog.test"],
                       remove=[])
    assert info.value.code == "DY043" and "blog" in info.value.message
    assert server.files == before


TLS = PROXY + 'acme_email = "ops@example.com"\n'


def tls_config(on: bool = True) -> Config:
    return config(web="", proxy=TLS).model_copy(update={
        "web": config().web.model_copy(update={"tls": on})})


def test_https_is_ordered_at_the_first_deploy_and_redirects(server: FakeServer) -> None:
    deploy(server, tls_config())
    assert server.redirects("hello.test") and rc.cert_path("hello.test") in server.crt_list
    assert "hello.test" in server.read(f"{paths.ROOT}/apps/hello/tls-domains")


def test_one_duration_in_the_summary_json_and_history(server: FakeServer) -> None:
    server.order_seconds = 6.0
    r = runner(server)
    r.started = server.clock.now() - 0.4  # Dockyard started before it connected
    result = flows.deploy(r, tls_config(), HELLO, Progress(quiet=True))
    # the waits of a first deploy (health checks, the certificate) ran on the fake clock
    assert result.seconds >= 6.4 and result.certificate_wait >= 6.0
    assert result.seconds == round(server.clock.now() - r.started, 1)
    # the same number in the summary, in the audit log's closing line, and in history
    assert result.summary("hello") == (
        f"hello v1 is live on https://hello.test in {result.seconds:.1f}s "
        f"({result.certificate_wait:.1f}s of it waiting for the certificate)")
    ends = server.audit_ends()
    assert [e["took_ms"] for e in ends] == [round(result.seconds * 1000)]
    entries = audit.parse(server.read(paths.AUDIT_LOG))
    assert [e.took_s for e in entries] == [result.seconds]
    assert entries[0].as_dict()["seconds"] == result.seconds
    assert r.finish() == result.seconds  # taken once
    # a redeploy: no certificate to wait for, plain http:// when TLS is off
    again = deploy(server, config())
    assert again.certificate_wait < 0.5 and "waiting" not in again.summary("hello")
    assert again.urls == ["http://hello.test"]
    assert audit.parse(server.read(paths.AUDIT_LOG))[-1].took_s == again.seconds


def test_two_first_https_deploys_at_once_share_the_certificate_container(
        server: FakeServer) -> None:
    # both read "no certificate container"; the second's docker run meets the first's
    # container (seen in CI): the same settings, so it goes on with it
    from dockyard.certs import acme
    from dockyard.certs.ensure import ensure_certs

    deploy(server, tls_config())
    settings = tls_config().proxy
    gid = 0
    assert acme.NAME in server.containers
    started = ensure_certs(runner(server), settings, gid=gid, current=None,
                           image_present=True)
    assert started and acme.NAME in server.containers
    other = settings.model_copy(update={"acme_email": "someone-else@example.com"})
    with pytest.raises(DockyardError):  # different settings: not ours, the error stands
        ensure_certs(runner(server), other, gid=gid, current=None, image_present=True)


def test_turning_tls_off_stops_the_redirect_at_once_and_on_again_keeps_the_cert(
        server: FakeServer) -> None:
    deploy(server, tls_config())
    serial = server.certs_loaded[rc.cert_path("hello.test")]
    deploy(server, tls_config(on=False))
    assert not server.redirects("hello.test")  # the running router
    assert rc.cert_path("hello.test") not in server.crt_list  # the default cert on HTTPS
    assert "hello.test" not in server.read(f"{paths.ROOT}/router/etc/tls.map")  # its files
    assert server.read(f"{paths.ROOT}/apps/hello/tls-domains") == ""  # no more renewals
    rows = status.app_view(runner(server), tls_config(on=False))
    assert rows.state.route is not None and rows.state.route.tls is False
    deploy(server, tls_config(on=True))
    assert server.redirects("hello.test")
    assert server.certs_loaded[rc.cert_path("hello.test")] == serial  # no new order


# -- failures leave the old release serving ----------------------------------------------------

def test_a_health_check_that_never_passes_changes_nothing(server: FakeServer) -> None:
    deploy(server, config())
    old = web_containers(server)
    server.behaviors["web@v2"] = Behavior(healthy=False)
    with pytest.raises(DockyardError) as info:
        deploy(server, config())
    assert info.value.code == "DY051" and "did not pass its health check" in info.value.message
    assert web_containers(server) == old and served(server, "hello.test") == old
    assert {r.name: r.outcome for r in state(server).releases} == {"v1": "live",
                                                                  "v2": "failed"}


def test_a_web_container_that_dies_at_start_is_reported(server: FakeServer) -> None:
    deploy(server, config())
    server.behaviors["web@v2"] = Behavior(boot=10, exits_after=0.1, logs="boom\n")
    with pytest.raises(DockyardError) as info:
        deploy(server, config())
    assert info.value.code == "DY051" and "stopped before" in info.value.message
    assert any("boom" in line for line in info.value.details or [])
    assert len(web_containers(server)) == 1


def test_a_failing_release_command_starts_nothing(server: FakeServer) -> None:
    cfg = config(extra='[release]\ncommand = ["sh", "-c", "echo migrating; exit 3"]\n')
    deploy(server, config())
    old = web_containers(server)
    server.behaviors["release@v2"] = Behavior(exit_code=3, output="migrating\n")
    with pytest.raises(DockyardError) as info:
        deploy(server, cfg)
    assert info.value.code == "DY052" and "(exit 3)" in info.value.message
    assert any("migrating" in line for line in info.value.details or [])
    assert web_containers(server) == old and served(server, "hello.test") == old


@pytest.mark.parametrize("restarts", [False, True], ids=["exited", "restarted-by-its-policy"])
def test_a_process_that_exits_early_aborts_the_deploy(server: FakeServer, restarts: bool) -> None:
    """Also when its restart policy started it again and it is seen running between two
    crashes (its restart count tells)."""
    cfg = config(extra='[processes]\nworker = ["sleep", "3600"]\n')
    deploy(server, cfg)
    server.behaviors["worker@v2"] = Behavior(exits_after=1, restarts=restarts,
                                             logs="crashing\n")
    with pytest.raises(DockyardError) as info:
        deploy(server, cfg)
    assert info.value.code == "DY053"
    procs = sorted((c.labels["dockyard.process"], c.labels["dockyard.release"])
                   for c in server.app_containers("hello") if "dockyard.process" in c.labels)
    assert procs == [("web", "1"), ("worker", "1")]


@pytest.mark.parametrize("image,registry", [
    ("missing-postgress:16", "Docker Hub (docker.io)"),
    ("ghcr.io/acme/missing-app:1", "ghcr.io"),
    ("localhost:5000/missing-app", "localhost:5000"),
])
def test_an_image_that_cannot_be_pulled_says_which_from_where_and_what_to_check(
        server: FakeServer, image: str, registry: str) -> None:
    server.pullable = lambda ref: "missing" not in ref
    cfg = config(extra="").model_copy(update={
        "build": config().build.model_copy(update={"image": image})})
    with pytest.raises(DockyardError) as info:
        deploy(server, cfg)
    error = info.value
    assert error.code == "DY022" and error.exit_code == 1
    assert error.message.startswith(f"{image} could not be pulled from {registry} on ")
    assert "check the image name and tag" in error.message and "docker login" in error.message
    assert any("pull access denied" in line for line in error.details or [])
    assert server.app_containers("hello") == []


def test_a_failed_build_changes_nothing(server: FakeServer) -> None:
    deploy(server, config())
    server.build_ok = False
    with pytest.raises(DockyardError) as info:
        deploy(server, config())
    assert info.value.code == "DY056" and len(web_containers(server)) == 1


def test_a_lock_held_by_another_deploy_refuses(server: FakeServer) -> None:
    deploy(server, config())
    server.locks[f"{paths.ROOT}/apps/hello/lock"] = (
        '4242 {"user":"ann","host":"laptop","since":"now","command":"deploy"}')
    with pytest.raises(DockyardError) as info:
        deploy(server, config())
    assert info.value.code == "DY050" and "ann@laptop (deploy)" in info.value.message


# -- two apps, removal ------------------------------------------------------------------------

def test_two_apps_share_the_router_without_touching_each_other(server: FakeServer) -> None:
    deploy(server, config())
    deploy(server, config("blog", domain="blog.test"))
    hello = web_containers(server)
    deploy(server, config("blog", domain="blog.test"))
    assert web_containers(server) == hello and served(server, "hello.test") == hello
    assert served(server, "blog.test") == web_containers(server, "blog")
    slots = {r.app: r.slot for r in runner(server).read_one(
        __import__("dockyard.state.snapshot", fromlist=["routes"]).routes()).routes}
    assert slots == {"hello": 1, "blog": 2}


def test_a_deploy_waits_for_retirements_that_hold_every_free_slot(server: FakeServer) -> None:
    """Deploys back to back, each old release still draining: once every slot is taken, the
    next deploy waits for a retirement to finish (the issue: "the next deploy waits for or
    finishes a retirement still running"), then takes its slot."""
    server.retire_at_once, server.retire_after = False, 45.0
    for _ in range(5):
        deploy(server, config())
    assert len(web_containers(server)) >= 1
    assert served(server, "hello.test") == [c for c in web_containers(server)
                                            if "-v5-" in c]
    assert state(server).current == 5


def test_status_shows_the_old_release_draining_while_it_is_retired(server: FakeServer) -> None:
    server.retire_at_once = False
    deploy(server, config())
    deploy(server, config())
    rows = {r.release: r.health for r in status.app_view(runner(server), config()).rows}
    assert rows["v1"] == "draining (being retired)" and rows["v2"] != rows["v1"]
    server.finish_retirements()
    rows = {r.release: r.health for r in status.app_view(runner(server), config()).rows}
    assert list(rows) == ["v2"]


def test_a_retirement_that_never_ends_stops_the_deploy_with_where_to_look(
        server: FakeServer) -> None:
    server.retire_at_once = False  # retire_after None: stuck
    for _ in range(rc.SERVERS):
        deploy(server, config())
    live = served(server, "hello.test")
    with pytest.raises(DockyardError) as info:
        deploy(server, config())
    assert info.value.code == "DY040" and "retire.log" in info.value.message
    assert served(server, "hello.test") == live  # the live release kept serving


def test_two_first_deploys_at_once_never_share_a_router_slot(server: FakeServer) -> None:
    """Another app claims the lowest free slot between this deploy's read and its write: the
    write is refused (the routes changed), and this deploy takes the next free slot."""
    other = rc.Route(app="blog", slot=1, port=8080, tls=False, domains=["blog.test"])
    server.before_routes_write.append(
        lambda: server.files.__setitem__(f"{paths.APPS}/blog/route.json", other.to_json()))
    deploy(server, config())
    routes = runner(server).read_one(
        __import__("dockyard.state.snapshot", fromlist=["routes"]).routes()).routes
    assert {r.app: r.slot for r in routes} == {"blog": 1, "hello": 2}
    assert served(server, "hello.test") == web_containers(server)
    assert "hello.test slot02" in server.read(f"{paths.ROOT}/router/etc/hosts.map")


def test_apps_coming_and_going_never_move_the_routers_ports(server: FakeServer) -> None:
    """Docker gives a container's published ports to its network that sorts first by name:
    the router's own network sorts before every app's, whatever the apps are called."""
    deploy(server, config("zed", domain="zed.test"))
    for name in ("aaa", "blog", "dockyard-x", "a"):
        deploy(server, config(name, domain=f"{name}.test"))
    remove_app(runner(server, app="aaa", command="remove"), config("aaa", domain="aaa.test"),
               Progress(quiet=True), volumes_too=False)
    assert server.port_moves == []
    assert server.ports_network(router.NAME) == networks.ROUTER_NETWORK


def test_a_router_on_the_earlier_network_is_flagged_and_moved_by_router_apply(
        server: FakeServer) -> None:
    deploy(server, config("zed", domain="zed.test"))
    # the router as earlier versions made it: on "dockyard"
    del server.networks[networks.ROUTER_NETWORK]
    server.networks[networks.LEGACY_ROUTER_NETWORK] = {"dockyard.role": "network"}
    nets = server.containers[router.NAME].networks
    nets[networks.LEGACY_ROUTER_NETWORK] = nets.pop(networks.ROUTER_NETWORK)
    progress = Progress(quiet=True)
    progress.console = Console(file=io.StringIO(), width=300)
    flows.deploy(runner(server, app="blog"), config("blog", domain="blog.test"), HELLO, progress)
    assert server.port_moves == [("dockyard", "blog")]  # what the old name did
    warned = progress.console.file.getvalue()  # type: ignore[attr-defined]
    assert "router apply --yes" in warned and "earlier network" in warned

    run = runner(server, command="router apply")
    names = snapshot.facts(None, config())
    snap = snapshot.assemble(list(names), run.read(*names.values()))
    assert snap.router.on_legacy_network
    recreate_router(run, config().proxy, snap)
    assert set(server.containers[router.NAME].networks) == {"Dockyard", "zed", "blog"}
    assert networks.LEGACY_ROUTER_NETWORK not in server.networks
    assert served(server, "zed.test") and served(server, "blog.test")
    server.port_moves.clear()
    deploy(server, config("aaa", domain="aaa.test"))
    assert server.port_moves == []


def test_remove_takes_the_app_out_and_keeps_the_others(server: FakeServer) -> None:
    deploy(server, config())
    deploy(server, config("blog", domain="blog.test"))
    removed = remove_app(runner(server, command="remove"), config(), Progress(quiet=True),
                         volumes_too=False)
    assert removed.done
    assert server.app_containers("hello") == [] and served(server, "hello.test") == []
    assert "hello" not in server.networks
    assert not any(p.startswith(f"{paths.ROOT}/apps/hello/") for p in server.files)
    assert "hello.test" not in server.read(f"{paths.ROOT}/router/etc/hosts.map")
    assert served(server, "blog.test") == web_containers(server, "blog")


def test_a_remove_empties_its_slot_in_the_running_router_before_the_files_free_it(
        server: FakeServer) -> None:
    # once the files free the slot, another app's first deploy may take it at once: parking
    # servers or deleting host names after that would hit that app (seen in CI: a remove
    # whose write waited on the certificate lock deleted the next app's name)
    deploy(server, config())
    deploy(server, config("blog", domain="blog.test"))
    slot = snapshot.parse_routes(server.routes_text()).of("hello").backend  # type: ignore[union-attr]
    server.commands.clear()
    remove_app(runner(server, command="remove"), config(), Progress(quiet=True),
               volumes_too=False)
    log = [" ".join(c) for c in server.commands]
    frees = next(i for i, c in enumerate(log)
                 if c.startswith("sh ") and f"write-files.sh {paths.ROOT} " in c)
    touching = [i for i, c in enumerate(log) if c.startswith("router-api ")
                and (f"{slot}/" in c or "hello.test" in c) and not c.startswith("router-api show")]
    assert touching and max(touching) < frees, (touching, frees, log)
    assert served(server, "blog.test") == web_containers(server, "blog")


def test_remove_drops_https_names_from_the_router_and_stops_renewing(
        server: FakeServer) -> None:
    deploy(server, tls_config())
    remove_app(runner(server, command="remove"), tls_config(), Progress(quiet=True),
               volumes_too=False)
    assert not server.redirects("hello.test")
    assert rc.cert_path("hello.test") not in server.crt_list
    assert "hello.test" not in server.read(f"{paths.ROOT}/router/etc/tls.map")
    assert "hello.test" not in server._wanted()


def test_remove_says_what_it_kept_and_the_option_that_deletes_each(server: FakeServer) -> None:
    deploy(server, tls_config())
    server.volumes["hello-db-data"] = {"dockyard.app": "hello"}
    backup = f"{paths.BACKUPS}/hello/db/20261201T000000Z-manual.pgdump"
    server.files[backup] = b"PGDMP"
    server.files[backup + ".sha256"] = b"x  y\n"
    cert = f"{paths.ROOT}/certs/lego/certificates/hello.test.pem"
    assert cert in server.files
    asked: list[list[str]] = []
    removed = remove_app(runner(server, command="remove"), tls_config(), Progress(quiet=True),
                         volumes_too=False, confirm=asked.append)
    # the question named only what goes for good: no volume, backup or certificate
    assert len(asked) == 1 and not any("volume" in g or "backup" in g or "certificate" in g
                                       for g in asked[0])
    kept = "\n".join(removed.kept)
    assert "1 volume with the accessories' data (hello-db-data): dockyard remove --volumes" in kept
    assert f"1 backup in {paths.BACKUPS}/hello: dockyard remove --backups deletes them" in kept
    assert "the certificates of hello.test" in kept and "remove --certificates" in kept
    assert backup in server.files and cert in server.files and "hello-db-data" in server.volumes

    # a second remove, with the options, deletes what the first kept, after saying so
    asked.clear()
    again = remove_app(runner(server, command="remove"), tls_config(), Progress(quiet=True),
                       volumes_too=True, backups_too=True, certificates_too=True,
                       confirm=asked.append)
    assert again.kept == []
    said = "\n".join(asked[0])
    assert "1 volume" in said and "1 backup" in said and "certificates of hello.test" in said
    assert backup not in server.files and cert not in server.files
    assert "hello-db-data" not in server.volumes
    assert rc.cert_path("hello.test") not in server.certs_loaded


def test_remove_asks_before_changing_anything_and_a_no_changes_nothing(
        server: FakeServer) -> None:
    deploy(server, config())
    server.files[f"{paths.APPS}/hello/env.server"] = b"GREETING=hi\n"
    files, containers = dict(server.files), set(server.containers)

    def refuse(gone: list[str]) -> None:
        assert any("environment values set on the server (GREETING)" in g for g in gone)
        raise DockyardError("DY031", "nothing changed")

    with pytest.raises(DockyardError):
        remove_app(runner(server, command="remove"), config(), Progress(quiet=True),
                   volumes_too=True, backups_too=True, certificates_too=True, confirm=refuse)
    assert set(server.containers) == containers
    assert {p: b for p, b in server.files.items() if not p.startswith(paths.LOCK)} == {
        p: b for p, b in files.items() if not p.startswith(paths.LOCK)}


def test_a_site_is_routed_next_to_apps_and_removed_without_touching_its_service(
        server: FakeServer) -> None:
    from dockyard.deploy import sites

    deploy(server, config())
    route = sites.add(runner(server, command="site add"), config(), Progress(quiet=True),
                      "blog.test", "host:8081", tls_on=False, health="/")
    assert route.site == "host:8081" and route.app == "site-blog-test"
    assert "blog.test " + route.backend in server.read(f"{paths.ROOT}/router/etc/hosts.map")
    assert "172.17.0.1:8081" in server.read(f"{paths.ROOT}/router/etc/haproxy.cfg")
    assert any(c == ["router-api", f"set server {route.backend}/{route.backend}-web1 addr "
                     "172.17.0.1 port 8081"] for c in server.commands)
    listed = sites.listing(runner(server, command="site list"))
    assert [(r.domains, r.site) for r in listed] == [(["blog.test"], "host:8081")]
    assert served(server, "hello.test") == web_containers(server)  # the app is untouched
    with pytest.raises(DockyardError) as info:  # a name of an app is refused
        sites.add(runner(server, command="site add"), config(), Progress(quiet=True),
                  "hello.test", "host:8082", tls_on=False, health="/")
    assert info.value.code == "DY043"
    cfg = sites.site_config(config(), "blog.test", 80, tls_on=True, health="/")
    remove_app(runner(server, command="site remove", app=cfg.app.name), cfg,
               Progress(quiet=True), volumes_too=False)
    assert "blog.test" not in server.read(f"{paths.ROOT}/router/etc/hosts.map")
    assert sites.listing(runner(server, command="site list")) == []


def test_site_targets_and_names() -> None:
    from dockyard.deploy import sites

    assert sites.parse_to("host:8081") == ("host", 8081)
    assert sites.parse_to("blog-nginx:80") == ("blog-nginx", 80)
    for bad in ("8081", "host:0", "host:70000", "-x:80", "host:80:1"):
        with pytest.raises(DockyardError):
            sites.parse_to(bad)
    assert sites.site_name("blog.example.com") == "site-blog-example-com"
    long = sites.site_name("a-very-long-subdomain-name.of-some-example.com")
    assert len(long) <= 40 and long.startswith("site-a-very-long")


# -- plans ------------------------------------------------------------------------------------

def test_a_dry_run_prints_the_plan_and_changes_nothing(server: FakeServer) -> None:
    deploy(server, config())
    files, containers = dict(server.files), set(server.containers)
    r = runner(server, dry_run=True)
    flows.deploy(r, config(), HELLO, Progress(quiet=True))
    plan = r.out.getvalue()  # type: ignore[attr-defined]
    assert server.files == files and set(server.containers) == containers
    changes = [line for line in plan.split("\n") if line and not line.startswith("#")]
    assert any("build.sh dockyard/hello:v2" in line for line in changes)
    assert any(line.startswith("docker run -d --name=hello-web-v2-") for line in changes)
    assert any("set server slot01/" in line and "state ready" in line for line in changes)


def test_a_dry_run_on_a_bare_server(server: FakeServer) -> None:
    r = runner(server, dry_run=True)
    flows.deploy(r, config(), HELLO, Progress(quiet=True))
    plan = r.out.getvalue()  # type: ignore[attr-defined]
    assert server.files == {} and server.containers == {}
    assert "install -d -m 0750 /var/lib/dockyard /var/lib/dockyard/apps" in plan
    assert "docker run -d --name=dockyard-router" in plan


def test_explain_says_why_and_what_a_failure_means_for_each_line(server: FakeServer) -> None:
    deploy(server, config())
    r = runner(server, explain=True)
    flows.deploy(r, config(), HELLO, Progress(quiet=True))
    lines = r.out.getvalue().split("\n")  # type: ignore[attr-defined]
    fails: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line and not line.startswith("    # "):
            assert lines[i + 1].startswith("    # why: "), line
            assert lines[i + 2].startswith("    # if it fails: "), line
            fails[line] = lines[i + 2]
    # each step says what its own failure means: no catch-all sentence (issue 19, item 8)
    assert not any(flows.FAILS in note for note in fails.values())
    by_step = {next(line for line in fails if key in line): fails[next(
        line for line in fails if key in line)] for key in (
        "record and env snapshot", "docker run -d --name=hello-web-v2", "state ready",
        "slot01-web1 state drain", "route (hello.test)", "retire.sh", "prune.sh")}
    assert len(set(by_step.values())) >= 6, by_step


def test_a_planned_step_shows_no_check_mark_and_no_duration(server: FakeServer) -> None:
    deploy(server, config())
    progress = Progress(planned=True)
    progress.console = Console(file=io.StringIO(), width=200)
    flows.deploy(runner(server, dry_run=True), config(), HELLO, progress)
    shown = progress.console.file.getvalue()  # type: ignore[attr-defined]
    assert "· build dockyard/hello:v2 on the server (5 files) (planned)" in shown
    assert "✓" not in shown and "→" not in shown and "s)" not in shown.replace("files)", "")


# -- cut connections ----------------------------------------------------------------------------

REDEPLOY_TRIPS = 4  # lock + facts, build, start, switch


@pytest.mark.parametrize(("at", "after"), [(k, after) for k in range(1, REDEPLOY_TRIPS + 1)
                                           for after in (False, True)])
def test_a_cut_connection_leaves_a_serving_release_and_the_next_deploy_repairs(
        server: FakeServer, at: int, after: bool) -> None:
    deploy(server, config())
    server.cut_at, server.cut_after = server.round_trips + at, after
    with pytest.raises(HostError):
        deploy(server, config())
    server.cut_at = None
    assert len(served(server, "hello.test")) >= 1, "nothing serves after the cut"
    _repaired_by_the_next_deploy(server)


def _repaired_by_the_next_deploy(server: FakeServer) -> None:
    server.finish_retirements()
    result = deploy(server, config())
    server.finish_retirements()
    [web] = web_containers(server)
    assert served(server, "hello.test") == [web]
    assert web.startswith(f"hello-web-{result.release.name}-")
    live = [r.name for r in state(server).releases if r.outcome == "live"]
    assert live == [result.release.name]
    procs = [c for c in server.app_containers("hello") if c.labels.get("dockyard.process")]
    assert len(procs) == 1


def _first_deploy_trips() -> int:
    server = FakeServer()
    deploy(server, config())
    return server.round_trips


@pytest.mark.parametrize(("at", "after"), [(k, after) for k in range(1, _first_deploy_trips())
                                           for after in (False, True)])
def test_a_cut_first_deploy_is_finished_by_the_next_one(server: FakeServer, at: int,
                                                        after: bool) -> None:
    server.cut_at, server.cut_after = at, after
    with pytest.raises(HostError):
        deploy(server, config())
    server.cut_at = None
    _repaired_by_the_next_deploy(server)
