"""The zero-downtime switch on a cluster: the same order as one server (rollout.py), with a
Swarm service per process and release in place of a container, and every node's router
switched in turn.

1. on the first host (a manager): the release's records, its environment as a Swarm secret,
   the release command (a one-off container on the app's overlay network), then the new
   services next to the old ones (nothing routes to them yet); the image is on every node
   first (shipped layer by layer from the first host);
2. on every node's router: free slots named ``tasks.<service>`` (Docker's DNS gives each
   slot a task of its own, and gives it the replacement when Swarm moves a task), checked
   but sent nothing; the deploy waits until every router reports every slot healthy, and
   the extra processes stay up a few seconds;
3. on every router: the new slots take requests, the old ones drain; the records say the
   release is live (the first host's) and every router's files agree;
4. once no router has a request in flight to the old tasks (at most drain_timeout): their
   slots are parked on every router, then the old services and their secrets go.

A failure before 3 removes the new services and leaves the old release serving everywhere.
"""

from __future__ import annotations

import contextlib
import secrets as random
import socket
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn

from dockyard import values
from dockyard.cluster import services as svc
from dockyard.docker import engine
from dockyard.errors import CommandFailed, DockyardError
from dockyard.host.command import Command, Fact, Wait, change, fact
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.state import env as env_state
from dockyard.state import snapshot
from dockyard.state.releases import Outcome, Release

from .rollout import POLL, PROCESS_SETTLE, Switched, release_failed
from .target import Target

#: The registry on the first host the other nodes pull new images from (loopback only).
REGISTRY = "dockyard-cluster-registry"


def replicas(t: Target) -> int:
    """[web] replicas, or one task per node."""
    return t.config.web.replicas or len(t.everywhere)


def roll_out(t: Target, release: Release, env_file: str | None, *,
             before: Sequence[Command] = (), live_files: dict[str, bytes] | None = None,
             release_command: Command | None = None, prune: Command | None = None) -> Switched:
    runner, progress = t.runner, t.progress
    clock = runner.host.clock
    timings: dict[str, float] = {}
    cfg = t.config
    count = replicas(t)
    started = clock.now()
    web_name = svc.service_name(t.app, "web", release.number)
    with progress.step(f"start {web_name} ({count} tasks)"
                       + (f" and {len(cfg.processes)} more services" if cfg.processes else ""),
                       "boot"):
        runner.change_all(list(before))
        image = release.image_id if release.image_id.startswith("sha256:") else ""
        if not image:
            image = runner.read_one(snapshot.image_id(release.image)) or "<image id>"
            release.image_id = image
        ship_everywhere(t, release, image)
        config, env_text = runner.read(svc.image_config(image), _file(env_file))
        env = env_state.parse_env_file(env_text) if env_text else {}
        secret = f"{t.app}-env-v{release.number}-{random.token_hex(2)}"
        first: list[Command] = [svc.create_secret(secret, t.app, release.number,
                                                  svc.env_script(env), len(env))]
        specs = [svc.ServiceSpec(t.app, "web", release.number, image, t.network, web_name,
                                 count, secret, _command(config, cfg.web.command),
                                 cfg.deploy.stop_timeout,
                                 values.limits(cfg.web.memory, cfg.web.cpus, swarm=True))]
        specs += [svc.ServiceSpec(t.app, name, release.number, image, t.network,
                                  svc.service_name(t.app, name, release.number), proc.replicas,
                                  secret, _command(config, proc.command), cfg.deploy.stop_timeout,
                                  values.limits(proc.memory, proc.cpus, swarm=True))
                  for name, proc in sorted(cfg.processes.items())]
        try:
            if release_command is not None:
                ran = runner.change(release_command)
                timings["release"] = ran.duration
            runner.change_all([*first, *(svc.create(s, f"start the {s.process} service of "
                                                    f"{release.name} next to the old one")
                                         for s in specs)])
        except CommandFailed as exc:
            _abandon(t, [s.name for s in specs], [secret], {})
            raise release_failed(runner, release_command, exc) from None
    up_since = clock.now()
    added: dict[int, list[str]] = {}
    try:
        with progress.step(f"wait until every router reports the {count} tasks of {web_name} "
                           "healthy", "healthy"):
            for i, node in enumerate(t.everywhere):
                added[i] = _add_to_router(node, web_name, count)
            _wait_ready(t, added, specs, up_since)
    except BaseException:
        _abandon(t, [s.name for s in specs], [secret], added)
        raise
    timings["boot_to_healthy"] = clock.now() - started

    switch_started = clock.now()
    old: dict[int, list[str]] = {}
    with progress.step("switch traffic on every router", "switch"):
        for i, node in enumerate(t.everywhere):
            assert node.route is not None
            route = node.route
            view = _view(node)
            old[i] = [s for s in rc.server_names(route.slot)
                      if s not in added[i] and not _parked(view, s)]
            route.servers = dict.fromkeys(added[i], svc.dns_name(web_name))
            route.tls = cfg.web.tls
            before_calls = [*(api.set_server_state(route.backend, s, "ready") for s in added[i]),
                            *(api.set_server_state(route.backend, s, "drain") for s in old[i]
                              if (st := view.get(s)) is not None and not st.maint)]
            then = [prune] if prune is not None else []
            node.writer().commit(
                t.app, route, why=f"record {release.name} as {t.app}'s live release",
                app_files=(live_files or {}) if node is t else {}, before=before_calls,
                then=then, if_fails="the routers serve the new release already; the records "
                "still name the old one: run the command again to record it")
    timings["switch"] = clock.now() - switch_started
    release.outcome = Outcome.LIVE
    with progress.step("drain the old release on every router, then remove it", "retire"):
        _retire(t, old, keep={s.name for s in specs}, keep_secret=secret)
    return Switched(web_name, ",".join(added[0]), [s.name for s in specs[1:]],
                    [s for slots in old.values() for s in slots], timings)


def _file(path: str | None) -> Fact[str]:
    return fact(["cat", "--", path or "/dev/null"], lambda a: a.out if a.ok else "",
                "the release's environment (secret values: never printed)")


def _command(config: svc.ImageConfig, command: list[str] | None) -> list[str]:
    """What the wrapper runs: the image's entrypoint, then [web] command or its CMD."""
    return [*config.entrypoint, *(command if command is not None else config.cmd)]


def _view(t: Target) -> dict[str, api.ServerStat]:
    assert t.route is not None
    backend = t.route.backend
    stats = api.parse_stat(t.runner.api(api.show_stat(backend)))
    return {s: st for (b, s), st in stats.items() if b == backend}


def _parked(view: dict[str, api.ServerStat], server: str) -> bool:
    st = view.get(server)
    # port 1 (rc.UNUSED_PORT) stays when the parked name resolves to the router's own address
    return st is None or (st.maint and st.address.endswith(f":{rc.UNUSED_PORT}"))


def _add_to_router(t: Target, service: str, count: int) -> list[str]:
    """``count`` free slots of this node's router named after the new service's tasks:
    checked, sent nothing until the switch."""
    assert t.route is not None
    route, runner = t.route, t.runner
    view = _view(t)
    busy = set(route.servers)
    free = [s for s in rc.server_names(route.slot) if s not in busy and _parked(view, s)
            and s in view]
    if len(free) < count and not runner.dry_run:
        raise DockyardError("DY040", f"only {len(free)} free slots in {route.backend} on "
                            f"{runner.host.label} for {count} tasks (at most "
                            f"{rc.SERVERS // 2} replicas); lower [web] replicas")
    slots = free[:count] if free else [f"slot-{i}" for i in range(count)]
    writer = t.writer()
    for server in slots:
        writer.health_checks(route, server)
        runner.api(api.set_server_addr(route.backend, server, rc.UNREACHABLE_ADDR, route.port))
        runner.api(api.set_server_fqdn(route.backend, server, svc.dns_name(service)))
        runner.api(api.ApiCall(f"set server {route.backend}/{server} state drain",
                               "let the router health-check the new task without sending it "
                               "requests yet", if_fails=api.BEFORE_TRAFFIC))
        runner.api(api.set_server_health_down(route.backend, server))
    return slots


def _wait_ready(t: Target, added: dict[int, list[str]], specs: list[svc.ServiceSpec],
                started: float) -> None:
    runner = t.runner
    clock = runner.host.clock
    give_up = t.config.web.healthcheck_give_up
    last = {"seen": ""}
    settled = {"done": len(specs) == 1}

    def poll() -> bool | None:
        healthy = True
        for i, node in enumerate(t.everywhere):
            view = _view(node)
            for server in added[i]:
                st = view.get(server)
                ok = st is not None and st.status == "DRAIN" and st.check.startswith("L7OK")
                if not ok:
                    healthy = False
                    last["seen"] = (f"{node.runner.host.label} {server}: "
                                    + (f"{st.status} {st.check} {st.check_desc}".strip()
                                       if st else "no slot"))
        if not settled["done"] and clock.now() - started >= PROCESS_SETTLE:
            for spec in specs[1:]:
                states = runner.read_one(svc.tasks(spec.name))
                failed = [s for s in states if s.current in ("failed", "rejected")
                          or (s.desired == "shutdown" and s.error)]
                if failed:
                    raise DockyardError("DY053", f"the new {spec.process} service ({spec.name}) "
                                        "did not stay up: " + (failed[0].error or
                                                               failed[0].current)
                                        + "; the old release keeps running")
            settled["done"] = True
        if not healthy and clock.now() - started > 5:
            web = runner.read_one(svc.tasks(specs[0].name))
            bad = [s for s in web if s.current in ("rejected",) or "No such image" in s.error]
            if bad:
                raise DockyardError("DY051", f"the tasks of {specs[0].name} cannot start: "
                                    f"{bad[0].error or bad[0].current}; the old release keeps "
                                    "serving")
        return True if healthy and settled["done"] else None

    def expired() -> NoReturn:
        raise DockyardError(
            "DY051", f"{specs[0].name} did not pass its health check "
            f"({t.config.web.healthcheck}) on every router within {give_up:g}s (last: "
            f"{last['seen'] or 'no answer'}); the old release keeps serving")

    runner.wait(Wait(f"every router's checks pass for the new tasks (give up after "
                     f"{give_up:g}s)", poll, give_up, expired, interval=POLL, planned=True,
                     why="only tasks that answer their health check on every router get "
                     "traffic", if_fails="the new services are removed and the old release "
                     "keeps serving"))


def _abandon(t: Target, services: list[str], secrets: list[str],
             added: dict[int, list[str]]) -> None:
    """Undo a failed start: slots parked on every router, new services and secret gone."""
    with contextlib.suppress(DockyardError):
        for i, node in enumerate(t.everywhere):
            assert node.route is not None
            for server in added.get(i, []):
                for call in api.park_server(node.route.backend, server, named=True):
                    node.runner.api(call, check=False)
        t.runner.change_all([svc.remove(services), svc.remove_secrets(secrets)], check=False)


def _retire(t: Target, old: dict[int, list[str]], *, keep: set[str], keep_secret: str) -> None:
    """Wait until no router has a request in flight to the old tasks (at most
    drain_timeout), park their slots everywhere, then remove the old services."""
    runner = t.runner
    limit = t.config.deploy.drain_timeout

    def drained() -> bool | None:
        for i, node in enumerate(t.everywhere):
            view = _view(node)
            if any((st := view.get(s)) is not None and st.sessions for s in old[i]):
                return None
        return True

    def expired() -> NoReturn:
        raise _Expired

    with contextlib.suppress(_Expired):
        runner.wait(Wait(f"no router has a request in flight to the old tasks (at most "
                         f"{limit:g}s)", drained, limit, expired, interval=POLL, planned=True,
                         why="requests in flight finish before their tasks stop"))
    for i, node in enumerate(t.everywhere):
        assert node.route is not None
        for server in old[i]:
            for call in api.park_server(node.route.backend, server, named=True):
                node.runner.api(call, check=False)
    services, secrets = runner.read(svc.app_services(t.app), svc.app_secrets(t.app))
    gone = [s.name for s in services if s.name not in keep]
    changes = []
    if gone:
        changes.append(svc.remove(gone))
    stale = [s for s in secrets if s != keep_secret]
    if stale:
        changes.append(svc.remove_secrets(stale))
    runner.change_all(changes, check=False)


class _Expired(Exception):
    """drain_timeout passed: the old tasks stop anyway (as one server does)."""


# -- images ---------------------------------------------------------------------------------

def ship_everywhere(t: Target, release: Release, image_id: str) -> None:
    """Every node must have the release's image (by id, so Swarm never tries a registry).
    An image from a registry (deploy --image) is pulled by each node that lacks it, with the
    [registry] credentials; a built one is pulled from a registry on the first host, bound
    to its loopback and reached through this machine's SSH connections: only the layers a
    node lacks travel."""
    tag = release.image
    missing = [n for n in t.nodes if not n.runner.read_one(snapshot.image_id(image_id))]
    if not missing:
        return
    runner = t.runner
    if release.image_source not in ("", "server build", "local build"):
        from .ship import pull_image

        ref = release.image_source
        with t.progress.step(f"pull {ref} on {len(missing)} more nodes", "ship"), \
                ThreadPoolExecutor(max_workers=len(missing)) as pool:
            for pulled in [pool.submit(pull_image, n.runner, ref, tag, t.pull_login)
                           for n in missing]:
                pulled.result()
        return
    with t.progress.step(f"ship {tag} to {len(missing)} more nodes (the layers each lacks)",
                         "ship"), _registry(t) as port:
        name = f"127.0.0.1:{port}/{tag}"
        runner.change_all([
            change(["docker", "tag", tag, name], "name the image for the registry"),
            change(["docker", "push", name], "copy the image into the registry on this "
                   "host (loopback only)"),
            change(["docker", "image", "rm", "--no-prune", name],
                   "drop the temporary name")])
        with ThreadPoolExecutor(max_workers=len(missing)) as pool:  # nodes in parallel
            for done in [pool.submit(_pull_through, runner, node.runner, port, tag)
                         for node in missing]:
                done.result()


@contextlib.contextmanager
def _registry(t: Target) -> Iterator[int]:
    runner = t.runner
    image = t.config.build.registry_image
    found = runner.read_one(fact(["docker", "port", REGISTRY, "5000/tcp"],
                                 lambda a: a.out.split()[0] if a.ok and a.out.split() else "",
                                 "is the cluster registry running"))
    if not found:
        if not runner.read_one(snapshot.image_id(image)):
            runner.change(engine.pull(image))
        runner.change_all([
            change(["sh", "-c", f"docker rm -f {REGISTRY} >/dev/null 2>&1 || true"],
                   "remove a stopped registry container"),
            change(["docker", "run", "--detach", f"--name={REGISTRY}",
                    "--label=dockyard.role=registry", "--publish=127.0.0.1::5000",
                    f"--volume={REGISTRY}:/var/lib/registry", "--", image],
                   "start a registry on this host's loopback: the other nodes pull new "
                   "images from it through SSH")])
        found = runner.read_one(fact(["docker", "port", REGISTRY, "5000/tcp"],
                                     lambda a: a.out.split()[0] if a.ok and a.out.split()
                                     else "127.0.0.1:5000", "which port the registry got"))
    port = int(found.rsplit(":", 1)[1]) if ":" in found else 5000
    try:
        yield port
    finally:  # started again by the next deploy that ships; its volume keeps the layers
        runner.change(change(["docker", "stop", "--", REGISTRY], "stop the registry: the "
                             "nodes have the image"), check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pull_through(first: Runner, node: Runner, port: int, tag: str) -> None:
    """The node pulls from the first host's registry: its loopback port -> this machine ->
    the first host's loopback port (two forwards on the commands' SSH connections)."""
    if node.dry_run:
        node.note(f"# pull {tag} from the first host's registry through SSH forwards")
        return
    from .ship import pull_command

    local = _free_port()
    first.host.local_forward(local, port)
    try:
        remote = node.host.reverse_forward(local)
        try:
            node.change(pull_command(f"127.0.0.1:{remote}/{tag}", tag, untag=True,
                                     why=f"pull {tag} from the first host (only the layers "
                                     "this node lacks travel)"), timeout=3600)
        except CommandFailed as exc:
            raise DockyardError("DY026", f"{node.host.label} could not pull the image from the "
                                "first host; the running release is untouched",
                                exc.details) from None
        finally:
            node.host.cancel_reverse_forward(local)
    finally:
        first.host.cancel_local_forward(local, port)
