"""The zero-downtime switch, shared by deploy, rollback, restart and env changes.

Order matters, and each step is safe to interrupt:

1. start the new containers next to the old ones (nothing routes to them yet);
2. check the extra processes stay up; point a free router slot at the new web container and
   let the router health-check it; the old one keeps serving meanwhile;
3. once the router reports it up, record it as live (on-disk router config included, so a
   restarted router routes to it);
4. drain the old servers (no new requests; in-flight ones finish), park them, then stop and
   remove the old containers.

A failure before 3 removes the new containers and leaves the old release serving. A cut
connection at any point leaves the router serving the old or the new release; the next
deploy removes whatever is left over (by label).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dockyard.certs import acme
from dockyard.docker import containers as ctr
from dockyard.errors import DockyardError
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.router.ensure import read_routes, route_json, router_files
from dockyard.state.files import write_files
from dockyard.state.lock import Lock
from dockyard.state.releases import Release

from .target import Target

POLL = 0.25
PROCESS_SETTLE = 3.0
LOG_TAIL = 50


@dataclass
class RouterView:
    """The router's live picture of one backend."""

    stats: dict[str, api.ServerStat] = field(default_factory=dict)
    fqdn: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, t: Target, backend: str) -> RouterView:
        """Read-only, so it runs under --dry-run too (empty when the router would only be
        created by this very deploy)."""
        try:
            return cls._read(t, backend)
        except DockyardError:
            if t.runner.dry_run:
                return cls()
            raise

    @classmethod
    def _read(cls, t: Target, backend: str) -> RouterView:
        runner = t.runner
        stats = api.parse_stat(runner.api(api.show_stat(), socket=router.API_SOCKET))
        states = api.parse_servers_state(
            runner.api(api.show_servers_state(backend), socket=router.API_SOCKET))
        return cls(
            stats={s: st for (b, s), st in stats.items() if b == backend},
            fqdn={st.server: st.fqdn for st in states},
        )

    def serving(self) -> list[str]:
        return [s for s, st in self.stats.items() if st.serving]


@dataclass
class Outcome:
    web: str
    server: str
    processes: list[str]
    retired: list[str]
    timings: dict[str, float]


def roll_out(t: Target, release: Release, env_file: str | None, *,
             on_live: list[Release] | None = None) -> Outcome:
    """Start ``release`` and switch traffic to it with zero dropped requests."""
    runner, cfg, progress = t.runner, t.config, t.progress
    assert t.route is not None
    route = t.route
    backend = route.backend
    timings: dict[str, float] = {}

    view = RouterView.read(t, backend)
    web = ctr.ContainerSpec(t.app, "web", release.number, release.image, t.network,
                            ctr.container_name(t.app, "web", release.number), env_file,
                            cfg.web.command)
    procs = [ctr.ContainerSpec(t.app, name, release.number, release.image, t.network,
                               ctr.container_name(t.app, name, release.number), env_file, command)
             for name, command in sorted(cfg.processes.items())]
    new_names = [web.name, *(p.name for p in procs)]

    started = time.monotonic()
    with progress.step(f"start {web.name}" + (f" and {len(procs)} more" if procs else ""),
                       "boot"):
        runner.change(ctr.run(web, "start the new web container next to the old one; the old "
                              "one keeps serving until the new one passes its health check"))
        for spec in procs:
            runner.change(ctr.run(spec, f"start the new {spec.process} process next to the old "
                                  "one; the old one stops only once this one stays up"))
    try:
        if procs:
            with progress.step("check the new processes stay up", "processes"):
                _settle_processes(t, procs, started)
        server = _free_server(view, route)
        with progress.step(f"wait until the router reports {web.name} healthy", "healthy"):
            _add_to_router(t, route, server, web.name)
            _wait_healthy(t, backend, server, web.name)
    except BaseException:
        _abandon(t, new_names, backend, server if "server" in locals() else None)
        raise
    timings["boot_to_healthy"] = time.monotonic() - started

    switch_started = time.monotonic()
    with progress.step("switch traffic", "switch"):
        _record_live(t, route, server, web.name, release, on_live or [])
        _route_domains(t, route)
    timings["switch"] = time.monotonic() - switch_started

    drain_started = time.monotonic()
    retired = [s for s in rc.server_names(route.slot) if s != server]
    with progress.step("drain and retire the old release", "drain"):
        old_view = RouterView.read(t, backend)
        draining = [s for s in retired if s in old_view.stats and not old_view.stats[s].maint]
        for s in draining:
            runner.api(api.set_server_state(backend, s, "drain"), socket=router.API_SOCKET)
        _wait_drained(t, backend, draining, cfg.deploy.drain_timeout)
        for s in retired:
            st = old_view.stats.get(s)
            parked = (st is not None and st.maint and st.address == f"{rc.UNUSED_ADDR}:"
                      f"{rc.UNUSED_PORT}" and old_view.fqdn.get(s) in ("-", "", rc.PARKED_FQDN))
            if not parked:
                for call in api.park_server(backend, s, named=_named(old_view, s) and
                                            old_view.fqdn.get(s) != rc.PARKED_FQDN):
                    runner.api(call, socket=router.API_SOCKET)
        runner.flush_audit()
        _remove_old(t, keep=set(new_names))
    timings["drain"] = time.monotonic() - drain_started
    return Outcome(web.name, server, [p.name for p in procs], draining, timings)


def _settle_processes(t: Target, procs: list[ctr.ContainerSpec], started: float) -> None:
    """Each extra process must stay running for a few seconds before the old ones stop."""
    runner = t.runner
    if runner.dry_run:
        runner.note(f"# wait {PROCESS_SETTLE:g}s and check every new process still runs",
                    "a worker that crashes at start must not replace one that works; if one "
                    "exits, the new containers are removed and the old ones keep running")
        return
    remaining = PROCESS_SETTLE - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)
    for spec in procs:
        state = runner.query(ctr.inspect_state(spec.name), check=False)
        fields = state.out.split()
        if not state.ok or len(fields) < 3 or fields[1] != "true" or fields[2] != "0":
            tail = _logs(t, spec.name)
            raise DockyardError(
                "DY053", f"the new {spec.process} process ({spec.name}) did not stay up; the "
                "old release keeps running; its last log lines follow", tail)


def _named(view: RouterView, server: str) -> bool:
    """Does the slot carry a DNS name? Only slots the on-disk config declared with a
    container name do (after a router start); the router re-resolves those names."""
    return view.fqdn.get(server, "-") not in ("-", "")


def _free_server(view: RouterView, route: rc.Route) -> str:
    """A server slot nothing serves from and that carries no DNS name: deploys point slots
    at addresses only, so no late DNS answer can ever move a slot that serves."""
    busy = set(view.serving()) | set(route.servers)
    for name in rc.server_names(route.slot):
        if name not in busy and not _named(view, name) and (
                name not in view.stats or view.stats[name].maint):
            return name
    for name in rc.server_names(route.slot):
        if name not in busy and not _named(view, name):
            return name
    raise DockyardError("DY040", f"no free slot in {route.backend}: every slot serves or carries "
                        "a name; run the deploy again (leftovers are parked first)")


def _add_to_router(t: Target, route: rc.Route, server: str, container: str) -> None:
    runner = t.runner
    backend = route.backend
    uris = api.parse_map(runner.api(api.show_map(rc.HEALTH_URI_MAP), socket=router.API_SOCKET))
    hosts = api.parse_map(runner.api(api.show_map(rc.HEALTH_HOST_MAP), socket=router.API_SOCKET))
    health_host = t.config.web.domains[0] if t.config.web.domains else f"{t.app}.dockyard"
    for call in (api.put_map(uris, rc.HEALTH_URI_MAP, server, t.config.web.healthcheck)
                 + api.put_map(hosts, rc.HEALTH_HOST_MAP, server, health_host)):
        runner.api(call, socket=router.API_SOCKET)
    found = runner.query(ctr.address(container, t.network), check=False)
    ip = found.out.strip() if found.ok and found.out.strip() else "<container address>"
    runner.api(api.set_server_addr(backend, server, ip, route.port), socket=router.API_SOCKET)
    if not runner.dry_run:
        _check_address(t, backend, server, ip, container)
    # out of maintenance into drain (checked, but sent no requests), counted down until it
    # passes its checks; _wait_healthy puts it in rotation once the router saw it healthy
    runner.api(api.ApiCall(f"set server {backend}/{server} state drain",
                           "let the router health-check the new container without sending "
                           "it requests yet"), socket=router.API_SOCKET)
    runner.api(api.set_server_health_down(backend, server), socket=router.API_SOCKET)


def _check_address(t: Target, backend: str, server: str, ip: str, container: str) -> None:
    """Before any traffic: the slot must point at the new container's address."""
    for _ in range(20):
        states = api.parse_servers_state(
            t.runner.api(api.show_servers_state(backend), socket=router.API_SOCKET))
        mine = next((s for s in states if s.server == server), None)
        if mine is not None and mine.address == ip:
            return
        t.runner.api(api.set_server_addr(backend, server, ip, t.route.port if t.route else 0),
                     socket=router.API_SOCKET)
        time.sleep(0.05)
    raise DockyardError("DY040", f"the router did not take {container}'s address {ip} for "
                        f"{backend}/{server}; the old release keeps serving")


def _wait_healthy(t: Target, backend: str, server: str, container: str) -> None:
    runner = t.runner
    give_up = t.config.web.healthcheck_give_up
    if runner.dry_run:
        runner.note(f"# wait until the router's checks pass for {backend}/{server} "
                    f"(give up after {give_up:g}s), then:",
                    "only a container that answers its health check gets traffic; if it never "
                    "does, it is removed and the old release keeps serving")
        runner.api(api.set_server_state(backend, server, "ready"), socket=router.API_SOCKET)
        return
    deadline = time.monotonic() + give_up
    next_container_check = time.monotonic() + 2
    last = ""
    while time.monotonic() < deadline:
        stats = api.parse_stat(runner.api(api.show_stat(), socket=router.API_SOCKET))
        st = stats.get((backend, server))
        if st is not None:
            last = f"{st.status} {st.check} {st.check_desc}".strip()
            if st.status == "DRAIN" and st.check.startswith("L7OK"):
                runner.api(api.set_server_state(backend, server, "ready"),
                           socket=router.API_SOCKET)
                return
        if time.monotonic() >= next_container_check:
            next_container_check = time.monotonic() + 2
            state = runner.query(ctr.inspect_state(container), check=False)
            if not state.ok or state.out.split()[:1] not in (["running"], ["created"]):
                raise DockyardError("DY051", f"the new container {container} stopped before it "
                                    "became healthy; the old release keeps serving; its last "
                                    "log lines follow", _logs(t, container))
        time.sleep(POLL)
    raise DockyardError(
        "DY051", f"{container} did not pass its health check ({t.config.web.healthcheck}) within "
        f"{give_up:g}s (last: {last or 'no answer'}); the old release keeps serving; its last "
        "log lines follow", _logs(t, container))


def _record_live(t: Target, route: rc.Route, server: str, container: str, release: Release,
                 superseded: list[Release]) -> None:
    """The new release is up: make it the one a restarted router comes back to."""
    route.servers = {server: container}
    # the server's list is the truth (dockyard domains add|remove); the file's are added
    route.domains = [*route.domains, *(d for d in t.config.web.domains if d not in route.domains)]
    route.tls = t.config.web.tls
    release.outcome = "live"
    tls = acme.tls_domains(route.domains, route.tls)
    files = {"route.json": route_json(route).encode(), "current": f"{release.number}\n".encode(),
             f"releases/v{release.number}.json": release.to_json(),
             "tls-domains": "".join(f"{d}\n" for d in tls).encode()}
    for old in superseded:
        files[f"releases/v{old.number}.json"] = old.to_json()
    t.runner.change(write_files(t.app_dir, files, f"record {release.name} as {t.app}'s live "
                                "release", mode=0o644))
    # the router's files describe every app: read and rewrite them under the server-wide
    # lock, so two apps deploying at once never write back each other's old state
    with Lock(t.runner.host, None, f"deploy {t.app}", dry_run=t.runner.dry_run, wait=30):
        routes = [r for r in read_routes(t.runner) if r.app != t.app] + [route]
        t.runner.change(router.write_files(router_files(routes, gid=t.who.gid,
                                                        settings=t.settings,
                                                        with_cert=False)))


def _route_domains(t: Target, route: rc.Route) -> None:
    """Host names: add this app's, remove the ones it no longer has."""
    runner = t.runner
    current = api.parse_map(runner.api(api.show_map(rc.HOSTS_MAP), socket=router.API_SOCKET))
    wanted = set(route.domains)
    for domain in sorted(wanted):
        for call in api.put_map(current, rc.HOSTS_MAP, domain, route.backend):
            runner.api(call, socket=router.API_SOCKET)
    for domain, backend in sorted(current.items()):
        if backend == route.backend and domain not in wanted:
            runner.api(api.del_map(rc.HOSTS_MAP, domain), socket=router.API_SOCKET)


def _wait_drained(t: Target, backend: str, servers: list[str], timeout: float) -> None:
    runner = t.runner
    if not servers:
        return
    if runner.dry_run:
        runner.note(f"# wait until {', '.join(servers)} finish their in-flight requests "
                    f"(at most {timeout:g}s)",
                    "the old containers get no new requests and finish the ones they have, so "
                    "no request is cut; after drain_timeout they are stopped anyway")
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = api.parse_stat(runner.api(api.show_stat(), socket=router.API_SOCKET))
        busy = [s for s in servers
                if (st := stats.get((backend, s))) and (st.sessions or st.queued)]
        if not busy:
            return
        time.sleep(POLL)
    t.progress.warn(f"drain_timeout ({timeout:g}s) reached; stopping the old containers anyway")


def _remove_old(t: Target, keep: set[str]) -> None:
    runner = t.runner
    listed = ctr.parse_list(runner.query(ctr.list_app(t.app)).out)
    old = [item.name for item in listed
           if item.name not in keep and item.process and item.process != "release"]
    if old:
        runner.change(ctr.stop_and_remove(old, t.config.deploy.stop_timeout))


def _abandon(t: Target, names: list[str], backend: str, server: str | None) -> None:
    """Undo a failed start: out of the router, containers removed; the old keeps serving."""
    runner = t.runner
    try:
        if server is not None:
            for call in api.park_server(backend, server):
                runner.api(call, socket=router.API_SOCKET, check=False)
        runner.flush_audit()
        for name in names:
            runner.change(ctr.remove(name), check=False)
    except DockyardError:
        pass  # the next deploy removes leftovers by label


def _logs(t: Target, container: str) -> list[str]:
    result = t.runner.query(ctr.logs(container, tail=LOG_TAIL), check=False)
    lines = (result.out + result.err).splitlines()[-LOG_TAIL:]
    return [f"  | {t.runner.redact(line)}" for line in lines] or ["  (no log output)"]
