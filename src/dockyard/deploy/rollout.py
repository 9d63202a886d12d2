"""The zero-downtime switch, shared by deploy, rollback, restart and env changes.

Order matters, and each step is safe to interrupt:

1. one round trip: the release's records, its release command, the new containers started
   next to the old ones (nothing routes to them yet), and the new web container's address;
2. a free router slot is pointed at that address and health-checked by the router, the old
   release serving meanwhile; the extra processes must stay up a few seconds;
3. once the router reports it healthy: it takes requests and the old one drains, then one
   round trip records the release as live (the router's files included, so a restarted
   router routes to it) and starts the old release's retirement on the server;
4. the retirement (scripts/retire.sh, in a small container on the server) waits until the
   old containers have no request in flight, parks their slots, stops and removes them, and
   writes each step to the audit log, after this command has returned.

A failure before 3 removes the new containers and leaves the old release serving. A cut
connection at any point leaves the router serving the old or the new release; the next
deploy removes whatever is left over (by label).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from dockyard import scripts, values
from dockyard.accessories.cron import DOCKER_SOCKET
from dockyard.certs import acme
from dockyard.config.model import Config
from dockyard.docker import containers as ctr
from dockyard.errors import CommandFailed, DockyardError
from dockyard.host.command import Command, Wait, change
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.state import paths, snapshot
from dockyard.state.releases import Outcome, Release

from . import routed
from .target import Target

POLL = 0.25
PROCESS_SETTLE = 3.0
LOG_TAIL = 50
PLANNED_ADDRESS = "<container address>"


@dataclass
class RouterView:
    """The router's live picture of one backend."""

    stats: dict[str, api.ServerStat] = field(default_factory=dict)
    fqdn: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, t: Target, backend: str) -> RouterView:
        """Read-only: it runs under --dry-run too (empty when this very command would
        create the router)."""
        stats = api.parse_stat(t.runner.api(api.show_stat(backend)))
        states = api.parse_servers_state(t.runner.api(api.show_servers_state(backend)))
        return cls(stats={s: st for (b, s), st in stats.items() if b == backend},
                   fqdn={st.server: st.fqdn for st in states})

    def serving(self) -> list[str]:
        return [s for s, st in self.stats.items() if st.serving]

    def named(self, server: str) -> bool:
        """Does the slot carry a DNS name? Only slots the on-disk config declared with a
        container name do (after a router start); the router re-resolves those names."""
        return self.fqdn.get(server, "-") not in ("-", "", rc.PARKED_FQDN)

    def parked(self, server: str) -> bool:
        st = self.stats.get(server)
        return st is None or (st.maint and st.address == f"{rc.UNUSED_ADDR}:{rc.UNUSED_PORT}")


@dataclass
class Switched:
    """What a roll-out did: the new web container and its slot, the new processes, the
    slots whose release is being retired, and how long each phase took."""

    web: str
    server: str
    processes: list[str]
    retired: list[str]
    timings: dict[str, float]


def web_replicas(t: Target) -> int:
    """[web] replicas on one server (one when absent)."""
    return t.config.web.replicas or 1


def specs(t: Target, release: Release, env_file: str | None) -> list[ctr.ContainerSpec]:
    """The web containers first ([web] replicas), then one per [processes] entry and
    replica."""
    cfg = t.config
    out = [ctr.ContainerSpec(t.app, "web", release.number, release.image, t.network,
                             ctr.container_name(t.app, "web", release.number), env_file,
                             cfg.web.command, limits=values.limits(cfg.web.memory, cfg.web.cpus))
           for _ in range(web_replicas(t))]
    out += [ctr.ContainerSpec(t.app, name, release.number, release.image, t.network,
                              ctr.container_name(t.app, name, release.number), env_file,
                              proc.command, limits=values.limits(proc.memory, proc.cpus))
            for name, proc in sorted(cfg.processes.items()) for _ in range(proc.replicas)]
    for spec in out:
        with_extras(cfg, spec)
    return out


def with_extras(config: Config, spec: ctr.ContainerSpec) -> ctr.ContainerSpec:
    """What a compose service says beyond the tables (its own image, entrypoint, volumes,
    labels, plain env), on the container of its process."""
    composition = config.composition
    extras = composition.extras.get(spec.process) if composition is not None else None
    if extras is not None:
        spec.image = extras.image or spec.image
        spec.options = extras.options()
        spec.extra_labels = dict(extras.labels)
    return spec


def roll_out(t: Target, release: Release, env_file: str | None, *,
             before: Sequence[Command] = (), live_files: dict[str, bytes] | None = None,
             release_command: Command | None = None, prune: Command | None = None) -> Switched:
    """Start ``release`` and switch traffic to it with zero dropped requests. ``before``:
    commands of the same first round trip (records, env files, an image tag);
    ``live_files``: files under the app's directory written with the switch (its records as
    live); ``prune``: run with the switch."""
    if t.cluster:  # the same switch on a swarm: every node's router (deploy/swarm.py)
        from . import swarm

        return swarm.roll_out(t, release, env_file, before=before, live_files=live_files,
                              release_command=release_command, prune=prune)
    runner, progress = t.runner, t.progress
    clock = runner.host.clock
    assert t.route is not None
    route = t.route
    timings: dict[str, float] = {}
    view = RouterView.read(t, route.backend)
    containers = specs(t, release, env_file)
    count = web_replicas(t)
    webs, procs = containers[:count], containers[count:]
    web = webs[0]
    routed.prepare(t)
    legs, procs = routed.legs(t, procs)
    try:
        servers = free_servers(t, view, route, count)
    except DockyardError as exc:
        if exc.code != "DY040" or not t.snap.retiring:
            raise
        # every slot is taken, some by releases still draining: their retirements finish
        # first (at most drain_timeout + stop_timeout), then their slots are free
        view = _wait_for_retirements(t, route.backend)
        servers = free_servers(t, view, route, count)
    views = {leg.process: RouterView.read(t, leg.route.backend) for leg in legs}
    for leg in legs:
        leg.servers = free_servers(t, views[leg.process], leg.route, len(leg.specs))
    routed_specs = [spec for leg in legs for spec in leg.specs]

    started = clock.now()
    title = f"start {web.name}" + (f" and {len(containers) - 1} more" if len(containers) > 1
                                   else "")
    with progress.step(title, "boot"):
        first = [*before]
        if release_command is not None:
            first.append(release_command)
        first += [dataclasses.replace(
            ctr.run(spec, f"start the new {spec.process} container next to the old one; the "
                    "old one keeps serving until the new one "
                    + ("passes its health check" if spec.process == "web" else "stays up")),
            if_fails="the new containers are removed; the release that serves now keeps "
            "serving") for spec in containers]
        first += [ctr.address(w.name, t.network).command for w in [*webs, *routed_specs]]
        try:
            results = runner.change_all(first)
        except CommandFailed as exc:
            _abandon(t, [c.name for c in containers], route.backend, [])
            raise release_failed(runner, release_command, exc) from None
        if release_command is not None:
            ran = results[len(before)]
            timings["release"] = ran.duration
            if runner.verbose and ran.out.strip():
                progress.note(runner.redact(ran.out.rstrip()))
        found = [r.out.strip() if r.ok else "" for r in
                 results[len(results) - count - len(routed_specs):]]
        addresses, at = found[:count], count
        for leg in legs:  # their addresses follow web's, in the same order
            leg.addresses, at = found[at:at + len(leg.specs)], at + len(leg.specs)
    up_since = clock.now()  # the processes started at the end of that round trip
    placed = list(zip(servers, webs, strict=True))
    names = ", ".join(w.name for w in webs) if count <= 3 else f"{count} web containers"
    try:
        with progress.step(f"wait until the router reports {names} healthy", "healthy"):
            for (server, spec), address in zip(placed, addresses, strict=True):
                _add_to_router(t, route, server, address or PLANNED_ADDRESS, spec.name)
            for leg in legs:
                for (server, spec), address in zip(leg.placed, leg.addresses, strict=True):
                    _add_to_router(t, leg.route, server, address or PLANNED_ADDRESS, spec.name)
            _wait_ready(t, route.backend, placed, procs, up_since)
            for leg in legs:
                _wait_ready(t, leg.route.backend, leg.placed, [], up_since)
    except BaseException:
        _abandon(t, [c.name for c in containers], route.backend, servers)
        for leg in legs:
            _abandon(t, [], leg.route.backend, leg.servers)
        raise
    timings["boot_to_healthy"] = clock.now() - started

    switch_started = clock.now()
    with progress.step("switch traffic", "switch"):
        old = [s for s in rc.server_names(route.slot)
               if s not in servers and not view.parked(s) and s not in _retiring_slots(t)]
        retiring = [s for s in old if (st := view.stats.get(s)) is not None and not st.maint]
        route.servers = {server: spec.name for server, spec in placed}
        route.tls = t.config.web.tls
        leftovers = [c.name for c in t.snap.containers
                     if c.process and c.process != "release" and c.name not in
                     {spec.name for spec in containers}]
        retired = f"v{t.state.current}" if t.state.current else "leftovers"
        for leg in legs:  # each routed process's own backend switches as web's does
            lview = views[leg.process]
            lold = [s for s in rc.server_names(leg.route.slot)
                    if s not in leg.servers and not lview.parked(s)
                    and s not in _retiring_slots(t)]
            lretiring = [s for s in lold if (st := lview.stats.get(s)) is not None
                         and not st.maint]
            mine = [c.name for c in t.snap.containers if c.process == leg.process
                    and c.name in leftovers]
            leftovers = [name for name in leftovers if name not in mine]
            routed.switch(t, leg, lretiring, release.name,
                          retire(t, leg.route.backend, [(s, lview.named(s)) for s in lold],
                                 mine, retired) if lold or mine else None)
        for gone in routed.stale(t):
            routed.unroute(t, gone, f"take {gone.app} out of the router (no longer routed)")
        then = [retire(t, route.backend, [(s, view.named(s)) for s in old], leftovers,
                       retired)] if old or leftovers else []
        if prune is not None:
            then.append(prune)
        was = t.snap.routes.of(t.app)
        if t.snap.certs is not None and set(acme.tls_domains(route.domains, route.tls)) != (
                set(acme.tls_domains(was.domains, was.tls)) if was else set()):
            then.append(acme.sync())  # TLS turned on or off: the certificate lists follow
        before_calls = [*(api.set_server_state(route.backend, server, "ready")
                          for server in servers),
                        *(api.set_server_state(route.backend, s, "drain") for s in retiring)]
        t.writer().commit(t.app, route, why=f"record {release.name} as {t.app}'s live release",
                          app_files=live_files or {}, before=before_calls, then=then,
                          if_fails="the router serves the new release already; its records "
                          "still name the old one: run the command again to record it")
    timings["switch"] = clock.now() - switch_started
    release.outcome = Outcome.LIVE
    return Switched(web.name, ",".join(servers), [p.name for p in procs], old, timings)


def release_failed(runner: Runner, release_command: Command | None,
                   exc: CommandFailed) -> DockyardError | CommandFailed:
    """What a failed first round trip raises: DY052 with the release command's output when
    that is what failed, the failure itself otherwise."""
    if release_command is None or exc.command != runner.redact(release_command.line):
        return exc
    output = (exc.stdout + exc.stderr_tail).splitlines()[-LOG_TAIL:]
    return DockyardError("DY052", f"the release command failed (exit {exc.returncode}); "
                         "nothing was started or switched; its output follows",
                         [f"  | {line}" for line in output] or ["  (no output)"])


def _wait_for_retirements(t: Target, backend: str) -> RouterView:
    runner = t.runner
    names = ", ".join(job.container for job in t.snap.retiring)
    limit = t.config.deploy.drain_timeout + t.config.deploy.stop_timeout + 30

    def done() -> bool | None:
        left = runner.read_one(snapshot.app_containers(t.app)).retiring
        return True if not left else None

    def expired() -> NoReturn:
        raise DockyardError("DY040", f"no free slot in {backend}: the retirement of the old "
                            f"release ({names}) did not finish within {limit:g}s; see its "
                            f"log in {t.app_dir}/retire.log, then run the deploy again")

    with t.progress.step(f"wait for the old release to be retired ({names})"):
        runner.wait(Wait(f"{names} finished (at most {limit:g}s)", done, limit, expired,
                         why="every router slot of the app is taken, some by releases still "
                         "draining: their slots are free once they are retired",
                         interval=0.5, planned=True))
    t.snap.retiring = []
    return RouterView.read(t, backend)


def _retiring_slots(t: Target) -> set[str]:
    return {slot for job in t.snap.retiring for slot in job.slots}


def free_servers(t: Target, view: RouterView, route: rc.Route, count: int = 1) -> list[str]:
    """``count`` slots nothing serves from, that no retirement is draining, and that carry
    no DNS name: deploys point slots at addresses only, so no late DNS answer can ever move
    a slot that serves. Parked ones first."""
    busy = set(view.serving()) | set(route.servers) | _retiring_slots(t)
    if view.stats:  # a router started by an earlier version may have fewer slots
        busy |= {name for name in rc.server_names(route.slot) if name not in view.stats}
    usable = [n for n in rc.server_names(route.slot) if n not in busy and not view.named(n)]
    chosen = sorted(usable, key=lambda n: not view.parked(n))[:count]
    if len(chosen) < count:
        raise DockyardError("DY040", f"no free slot in {route.backend} for {count} new web "
                            f"container(s) (the router has {len(view.stats) or rc.SERVERS}; a "
                            "router started by an older Dockyard has fewer: run dockyard "
                            "router apply): every slot serves, drains or carries a name; run "
                            "the deploy again once the old release is retired (dockyard "
                            "status)")
    return chosen


def retire(t: Target, backend: str, servers: list[tuple[str, bool]], names: list[str],
           release: str) -> Command:
    """Start the retirement of ``release`` (the old one) on the server (scripts/retire.sh),
    detached: this command returns at once."""
    cfg = t.config
    container = f"{t.app}-retire-{release}-{secrets.token_hex(3)}"
    slots = ",".join(s for s, _ in servers)
    words = [f"{s}=named" if named else s for s, named in servers]
    argv = ["docker", "run", "-d", "--rm", f"--name={container}",
            f"--label=dockyard.app={t.app}", "--label=dockyard.role=retire",
            f"--label=dockyard.slots={slots}", f"--label=dockyard.release={release}",
            f"--network=container:{router.NAME}",
            f"--volume={DOCKER_SOCKET}:{DOCKER_SOCKET}", f"--volume={paths.ROOT}:{paths.ROOT}",
            "--entrypoint=sh", "--", t.settings.tools_image, scripts.path("retire"),
            t.runner.audit_fields(), str(round(cfg.deploy.drain_timeout)),
            str(round(cfg.deploy.stop_timeout)), backend, *words, "--", *names]
    return change(scripts.argv("spawn", f"{t.app_dir}/retire.log", *argv),
                  "retire the old release on the server, after this command returns: wait "
                  "until it has no request in flight (at most drain_timeout), park its router "
                  "slots, stop and remove its containers; each step goes to the audit log",
                  if_fails="the old release keeps running, out of rotation; the next deploy "
                  "retires it")


def _add_to_router(t: Target, route: rc.Route, server: str, address: str,
                   container: str) -> None:
    """The new container into a free slot, checked but sent nothing until it is healthy:
    out of maintenance into drain, counted down until it passes its checks."""
    runner = t.runner
    t.writer().health_checks(route, server)
    runner.api(api.set_server_addr(route.backend, server, address, route.port))
    _check_address(t, route.backend, server, address, container, route.port)
    runner.api(api.ApiCall(f"set server {route.backend}/{server} state drain",
                           "let the router health-check the new container without sending "
                           "it requests yet", if_fails=api.BEFORE_TRAFFIC))
    runner.api(api.set_server_health_down(route.backend, server))


def _check_address(t: Target, backend: str, server: str, ip: str, container: str,
                   port: int) -> None:
    """Before any traffic: the slot must point at the new container's address."""
    runner = t.runner

    def took() -> bool | None:
        states = api.parse_servers_state(runner.api(api.show_servers_state(backend)))
        mine = next((s for s in states if s.server == server), None)
        if mine is not None and mine.address == ip:
            return True
        runner.api(api.set_server_addr(backend, server, ip, port))
        return None

    def expired() -> NoReturn:
        raise DockyardError("DY040", f"the router did not take {container}'s address {ip} for "
                            f"{backend}/{server}; the old release keeps serving")

    runner.wait(Wait(f"{backend}/{server} points at {container}", took, 1.0, expired,
                     if_fails=api.BEFORE_TRAFFIC,
                     interval=0.05, planned=True,
                     why="the slot must reach the new container before anything else"))


def _wait_ready(t: Target, backend: str, placed: list[tuple[str, ctr.ContainerSpec]],
                procs: list[ctr.ContainerSpec], started: float) -> None:
    """Until the router saw every new web container pass its checks (then they take
    requests) and the extra processes stayed up PROCESS_SETTLE seconds (a worker that
    crashes at start must not replace one that works)."""
    runner = t.runner
    clock = runner.host.clock
    give_up = t.config.web.healthcheck_give_up
    seen = _Progress(settled=not procs, next_check=clock.now() + 2)
    healthy: set[str] = set()

    def poll() -> bool | None:
        if len(healthy) < len(placed):
            stats = api.parse_stat(runner.api(api.show_stat(backend)))
            for server, _spec in placed:
                st = stats.get((backend, server))
                if st is not None and server not in healthy:
                    seen.last = f"{st.status} {st.check} {st.check_desc}".strip()
                    if st.status == "DRAIN" and st.check.startswith("L7OK"):
                        healthy.add(server)
        seen.healthy = len(healthy) == len(placed)
        now = clock.now()
        if not seen.settled and now - started >= PROCESS_SETTLE:
            alive = runner.read(*(ctr.stayed_up(p.name) for p in procs))
            for spec, up in zip(procs, alive, strict=True):
                if not up:
                    raise DockyardError(
                        "DY053", f"the new {spec.process} process ({spec.name}) did not stay "
                        "up; the old release keeps running; its last log lines follow",
                        _logs(t, spec.name))
            seen.settled = True
        if not seen.healthy and now >= seen.next_check:
            seen.next_check = now + 2
            waiting = [spec for server, spec in placed if server not in healthy]
            running = runner.read(*(ctr.running(spec.name) for spec in waiting))
            for spec, up in zip(waiting, running, strict=True):
                if not up:
                    raise DockyardError("DY051", f"the new container {spec.name} stopped "
                                        "before it became healthy; the old release keeps "
                                        "serving; its last log lines follow",
                                        _logs(t, spec.name))
        return True if seen.healthy and seen.settled else None

    def expired() -> NoReturn:
        late = next((spec for server, spec in placed if server not in healthy), placed[0][1])
        raise DockyardError(
            "DY051", f"{late.name} did not pass its health check ({t.config.web.healthcheck}) "
            f"within {give_up:g}s (last: {seen.last or 'no answer'}); the old release keeps "
            "serving; its last log lines follow", _logs(t, late.name))

    slots = ", ".join(f"{backend}/{server}" for server, _spec in placed)
    runner.wait(Wait(f"the router's checks pass for {slots} (give up after "
                     f"{give_up:g}s)" + (f" and every new process stays up "
                                         f"{PROCESS_SETTLE:g}s" if procs else ""),
                     poll, give_up, expired, interval=POLL, planned=True,
                     why="only a container that answers its health check gets traffic, and a "
                     "worker that crashes at start does not replace one that works",
                     if_fails="the new containers are removed and the old release keeps "
                     "serving"))


@dataclass
class _Progress:
    """What the wait for a new release has seen so far."""

    settled: bool
    next_check: float
    healthy: bool = False
    last: str = ""


def _abandon(t: Target, names: list[str], backend: str, servers: list[str]) -> None:
    """Undo a failed start: out of the router, containers removed; the old keeps serving."""
    runner = t.runner
    try:
        for server in servers:
            for call in api.park_server(backend, server):
                runner.api(call, check=False)
        runner.change_all([ctr.remove_all(names)], check=False)
    except DockyardError:
        pass  # the next deploy removes leftovers by label


def _logs(t: Target, container: str) -> list[str]:
    lines = t.runner.read_one(ctr.logs_fact(container, LOG_TAIL))
    return [f"  | {t.runner.redact(line)}" for line in lines[-LOG_TAIL:]] or ["  (no log output)"]
