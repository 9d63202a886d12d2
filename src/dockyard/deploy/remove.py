"""Removing an app: its router entries, containers, images, network and state.

Volumes (accessory data) and backups stay unless asked for: data is never removed by
default. The router keeps running for the other apps and is not reloaded.
"""

from __future__ import annotations

from dockyard.config.model import ProxyConfig
from dockyard.docker import containers as ctr
from dockyard.docker import networks
from dockyard.errors import DockyardError
from dockyard.host.command import change, query
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.router.ensure import read_routes, router_files
from dockyard.server.setup import identity
from dockyard.state import paths
from dockyard.state import proxy as proxy_state
from dockyard.state.lock import Lock
from dockyard.state.releases import parse_state, read_state


def remove_app(runner: Runner, app: str, *, volumes: bool) -> list[str]:
    done: list[str] = []
    with Lock(runner.host, app, "remove", dry_run=runner.dry_run):
        state = parse_state(runner.query(read_state(app)).out)
        route = state.route
        if route is not None:
            try:
                _unroute(runner, route)
                done.append(f"removed from the router ({route.backend} is free again)")
            except DockyardError as exc:
                done.append(f"router not updated ({exc.message}); its files are")
        listed = ctr.parse_list(runner.query(ctr.list_app(app)).out)
        for item in listed:
            runner.change(ctr.remove(item.name))
        if listed:
            done.append(f"removed {len(listed)} container(s)")
        # by tag, never by id: an image also tagged otherwise (build.image = "postgres:16",
        # a base image) keeps its other names and stays
        images = runner.query(query(["docker", "image", "ls",
                                     "--format={{.Repository}}:{{.Tag}}", "--",
                                     f"dockyard/{app}"],
                                    "the app's release images"), check=False).out.split()
        if images:
            runner.change(change(["docker", "image", "rm", "--", *sorted(set(images))],
                                 f"remove {app}'s release images (their tags; images that "
                                 "have other names stay)"), check=False)
            done.append(f"removed {len(set(images))} release image tag(s)")
        if runner.query(networks.exists(app), check=False).ok:
            runner.change(networks.disconnect(app, router.NAME), check=False)
            runner.change(networks.remove(app))
            done.append(f"removed the {app} network")
        if volumes:
            vols = runner.query(query(["docker", "volume", "ls", "-q",
                                       f"--filter=label=dockyard.app={app}"],
                                      "the app's volumes"),
                                check=False).out.split()
            if vols:
                runner.change(change(["docker", "volume", "rm", "--", *vols],
                                     "remove its volumes"))
                done.append(f"removed {len(vols)} volume(s)")
        runner.change(change(["rm", "-rf", paths.app_dir(app)],
                             f"remove {app}'s releases, env files and routing state"))
        with Lock(runner.host, None, f"remove {app}", dry_run=runner.dry_run, wait=30):
            routes = [r for r in read_routes(runner) if r.app != app]
            if runner.query(router.has_default_cert(), check=False).ok:
                raw = runner.query(proxy_state.read_command(), check=False)
                settings = (proxy_state.parse(raw.out) if raw.ok else None) or ProxyConfig()
                files = router_files(routes, gid=identity(runner).gid, with_cert=False,
                                     settings=settings)
                runner.change(router.write_files(files))
        runner.flush_audit()
    return done


def _unroute(runner: Runner, route: rc.Route) -> None:
    sock = router.API_SOCKET
    hosts = api.parse_map(runner.api(api.show_map(rc.HOSTS_MAP), socket=sock))
    for domain, backend in sorted(hosts.items()):
        if backend == route.backend:
            runner.api(api.del_map(rc.HOSTS_MAP, domain), socket=sock)
    for path in (rc.HEALTH_URI_MAP, rc.HEALTH_HOST_MAP):
        entries = api.parse_map(runner.api(api.show_map(path), socket=sock))
        for server in rc.server_names(route.slot):
            if server in entries:
                runner.api(api.del_map(path, server), socket=sock)
    stats = api.parse_stat(runner.api(api.show_stat(), socket=sock))
    for server in rc.server_names(route.slot):
        st = stats.get((route.backend, server))
        if st is not None and not st.maint:
            runner.api(api.set_server_state(route.backend, server, "drain"), socket=sock)
    names = {st.server: st.fqdn for st in api.parse_servers_state(
        runner.api(api.show_servers_state(route.backend), socket=sock))}
    for server in rc.server_names(route.slot):
        named = names.get(server, "-") not in ("-", "")
        for call in api.park_server(route.backend, server, named=named):
            runner.api(call, socket=sock, check=False)
