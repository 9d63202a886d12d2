"""The one writer of the router's routes.

deploy, rollback, restart, env changes, ``domains add|remove``, TLS on/off, ``remove`` and
``router apply`` all change the router through ``Writer.commit``, which:

1. checks the change against every other app's routes (one name, one app: DY043);
2. applies the Runtime API calls that must come first (a switch: the new server in
   rotation, the old one draining);
3. writes the app's route.json, the files it asks for, and the router's configuration
   rendered from all routes, in one atomic write under the server-wide router lock, only if
   the routes on the server are still the ones it computed from; when another app changed
   them meanwhile, it reads them again, checks again and writes again;
4. applies the map changes (host names, health checks, HTTPS redirects) and any other
   Runtime API calls, so the running router agrees with the files without a reload. A
   removal does this before step 3: the slot is emptied while the files still say it is the
   app's, since once they free it another app may take it at once.

The files are derived (regenerated from the routes, never edited in place), so a restarted
router comes back routing every app as the running one did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dockyard.certs import acme
from dockyard.config.model import ProxyConfig
from dockyard.errors import CommandFailed, DockyardError
from dockyard.host.command import Command
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router.routes import check_domains_free
from dockyard.state import paths
from dockyard.state.files import write_files
from dockyard.state.snapshot import Routes, parse_routes

#: Conflicts tolerated before giving up (another app writing at the very same moment).
RETRIES = 5

#: A route computed from the other apps' routes (a free slot depends on them).
Plan = Callable[[Routes], "rc.Route | None"]


def router_files(routes: Sequence[rc.Route], *, gid: int,
                 settings: ProxyConfig) -> dict[str, bytes]:
    """The router's configuration, paths relative to /var/lib/dockyard/router/etc."""
    files = {"haproxy.cfg": rc.render(list(routes), socket_gid=gid, hsts=settings.hsts,
                                      tunnel_timeout_s=settings.tunnel_timeout,
                                      behind_proxy=settings.behind_proxy).encode()}
    files.update({name: text.encode() for name, text in rc.render_maps(list(routes)).items()})
    files["maintenance.html"] = rc.MAINTENANCE_HTML.encode()
    return files


def _fixed(route: rc.Route | None) -> Plan:
    def plan(_routes: Routes) -> rc.Route | None:
        return route

    return plan


@dataclass
class Writer:
    runner: Runner
    settings: ProxyConfig
    gid: int
    routes: Routes

    def commit(self, app: str, route: rc.Route | Plan | None, *, why: str,
               app_files: dict[str, bytes] | None = None, remove: Sequence[str] = (),
               before: Sequence[api.ApiCall] = (), after: Sequence[api.ApiCall] = (),
               then: Sequence[Command] = (), if_fails: str = "", maps: bool = True,
               ) -> rc.Route | None:
        """Make ``route`` the app's route (None: the app has none any more; a function:
        the route it computes from the others' routes, again after a conflict). ``app_files``
        and ``remove``: paths under the app's directory written or deleted in the same
        write; ``then``: commands run in the same round trip after it; ``maps``: apply the
        map changes to the running router (not when a slot is only claimed)."""
        plan: Plan = route if callable(route) else _fixed(route)
        old = self.routes.of(app)
        new = plan(self.routes)
        if new is not None:
            check_domains_free(app, new.domains, self.routes.routes)
        for call in before:
            self.runner.api(call)
        if new is None and old is not None:
            # a removal empties its slot in the running router while the files still say it
            # is this app's: once they free it, another app may claim it at once, and maps
            # read then (or servers parked then) would be that app's (it happened: a remove
            # whose write waited on the certificate lock deleted the next app's host name)
            if maps:
                self._maps(old, None)
            for call in after:
                self.runner.api(call)
            maps, after = False, ()
        for _ in range(RETRIES):
            command = self._write(app, new, app_files or {}, remove, why, if_fails)
            try:
                written = self.runner.change_all([command, *then])[0]
            except CommandFailed as exc:
                if exc.returncode != 75:
                    raise
                self.routes = parse_routes(exc.stdout)  # another app wrote meanwhile
                old = self.routes.of(app) or old
                new = plan(self.routes)
                if new is not None:
                    check_domains_free(app, new.domains, self.routes.routes)
                continue
            break
        else:
            raise DockyardError("DY040", "the router's routes kept changing while this command "
                                "wrote them; run it again")
        self.routes = Routes((*self.routes.others(app), *([new] if new else [])),
                             written.out.strip() or self.routes.digest)
        if maps:
            self._maps(old, new)
        for call in after:
            self.runner.api(call)
        return new

    def write_all(self, why: str, *, then: Sequence[Command] = ()) -> None:
        """The router's files again from the routes as they are (a new router, new
        settings); no route changes."""
        for _ in range(RETRIES):
            files = {f"router/etc/{name}": body for name, body in
                     router_files(self.routes.routes, gid=self.gid,
                                  settings=self.settings).items()}
            command = write_files(paths.ROOT, files, why, mode=0o644,
                                  routes_digest=self.routes.digest,
                                  label="<the router's files>")
            try:
                written = self.runner.change_all([command, *then])[0]
                self.routes = Routes(self.routes.routes, written.out.strip() or
                                     self.routes.digest)
                return
            except CommandFailed as exc:
                if exc.returncode != 75:
                    raise
                self.routes = parse_routes(exc.stdout)
        raise DockyardError("DY040", "the router's routes kept changing while this command "
                            "wrote them; run it again")

    def health_checks(self, route: rc.Route, server: str) -> None:
        """How the router checks a slot: its path and Host header, per server name (a new
        release with a new health path never changes how the old one is checked)."""
        uris = api.parse_map(self.runner.api(api.show_map(rc.HEALTH_URI_MAP)))
        hosts = api.parse_map(self.runner.api(api.show_map(rc.HEALTH_HOST_MAP)))
        for call in (api.put_map(uris, rc.HEALTH_URI_MAP, server, route.health_path)
                     + api.put_map(hosts, rc.HEALTH_HOST_MAP, server, route.health_host)):
            self.runner.api(call)

    def _write(self, app: str, route: rc.Route | None, app_files: dict[str, bytes],
               remove: Sequence[str], why: str, if_fails: str) -> Command:
        others = self.routes.others(app)
        routes = [*others, *([route] if route else [])]
        app_dir = paths.app_dir(app).removeprefix(paths.ROOT + "/")
        etc = f"{paths.ROOT}/router/etc".removeprefix(paths.ROOT + "/")
        files = {f"{etc}/{name}": body for name, body in
                 router_files(routes, gid=self.gid, settings=self.settings).items()}
        modes = dict.fromkeys(files, 0o644)
        for name, body in app_files.items():
            files[f"{app_dir}/{name}"] = body
        gone = [f"{app_dir}/{name}" for name in remove]
        if route is not None:
            files[f"{app_dir}/route.json"] = route.to_json()
            tls = acme.tls_domains(route.domains, route.tls)
            files[f"{app_dir}/tls-domains"] = "".join(f"{d}\n" for d in tls).encode()
        else:
            gone += [f"{app_dir}/route.json", f"{app_dir}/tls-domains"]
        if gone:
            files[".remove"] = "".join(f"{g}\n" for g in gone).encode()
        listed = ", ".join(route.domains) if route and route.domains else "no names"
        return write_files(paths.ROOT, files, why, modes=modes,
                           routes_digest=self.routes.digest,
                           label=f"<{app}'s route ({listed}) and the router's files>",
                           if_fails=if_fails)

    def _maps(self, old: rc.Route | None, new: rc.Route | None) -> list[str]:
        """The running router's maps follow the change: host names, health checks, and the
        HTTPS redirect of names that no longer want it (the certificate container drops
        them from its files too)."""
        runner = self.runner
        hosts = api.parse_map(runner.api(api.show_map(rc.HOSTS_MAP)))
        if new is not None:
            for domain in new.domains:
                for call in api.put_map(hosts, rc.HOSTS_MAP, domain, new.backend):
                    runner.api(call)
        backend = new.backend if new else (old.backend if old else None)
        wanted = set(new.domains) if new else set()
        for domain, owner in sorted(hosts.items()):
            if owner == backend and domain not in wanted:
                runner.api(api.del_map(rc.HOSTS_MAP, domain))
        if new is not None or old is not None:
            slot = (new or old).slot  # type: ignore[union-attr]
            uris = api.parse_map(runner.api(api.show_map(rc.HEALTH_URI_MAP)))
            health_hosts = api.parse_map(runner.api(api.show_map(rc.HEALTH_HOST_MAP)))
            for server in rc.server_names(slot):
                if new is not None:
                    for call in (api.put_map(uris, rc.HEALTH_URI_MAP, server, new.health_path)
                                 + api.put_map(health_hosts, rc.HEALTH_HOST_MAP, server,
                                               new.health_host)):
                        runner.api(call)
                else:
                    for table, entries in ((rc.HEALTH_URI_MAP, uris),
                                           (rc.HEALTH_HOST_MAP, health_hosts)):
                        if server in entries:
                            runner.api(api.del_map(table, server))
        if (new is not None and new.cluster) or (old is not None and old.cluster):
            self._cluster(old, new)
        return self._redirects(old, new)

    def _cluster(self, old: rc.Route | None, new: rc.Route | None) -> None:
        """A cluster app's backend retries unanswered GETs after its response_timeout. A
        router started by an earlier version has no cluster.map: it retries them after its
        next start (router apply)."""
        runner = self.runner
        answer = runner.api(api.show_map(rc.CLUSTER_MAP), check=False)
        if api.is_api_error(answer):
            return
        current = api.parse_map(answer)
        backend = (new or old).backend  # type: ignore[union-attr]
        if new is not None and new.cluster:
            for call in api.put_map(current, rc.CLUSTER_MAP, backend,
                                    str(new.response_timeout_ms)):
                runner.api(call)
        elif backend in current:
            runner.api(api.del_map(rc.CLUSTER_MAP, backend))

    def _redirects(self, old: rc.Route | None, new: rc.Route | None) -> list[str]:
        """HTTPS for names that stop wanting it ends at once: no redirect, the default
        certificate on the HTTPS port. Names that want it again get the certificate kept
        from before (no new order) and their redirect back."""
        runner = self.runner
        before = set(acme.tls_domains(old.domains, old.tls)) if old else set()
        after = set(acme.tls_domains(new.domains, new.tls)) if new else set()
        dropped, added = sorted(before - after), sorted(after - before)
        if not dropped and not added:
            return []
        redirected = api.parse_map(runner.api(api.show_map(rc.TLS_MAP)))
        listed = api.parse_crt_list(runner.api(api.show_crt_list()))
        for name in dropped:
            if name in redirected:
                runner.api(api.del_map(rc.TLS_MAP, name))
            if rc.cert_path(name) in listed:
                runner.api(api.del_crt_list(rc.cert_path(name)))
        for name in added:
            if not api.parse_ssl_cert(runner.api(api.show_ssl_cert(rc.cert_path(name)))):
                continue  # no certificate yet: the deploy orders one
            if rc.cert_path(name) not in listed:
                runner.api(api.add_crt_list(rc.cert_path(name)))
            if name not in redirected:
                runner.api(api.add_map(rc.TLS_MAP, name, "1"))
        return dropped
