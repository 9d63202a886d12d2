"""`dockyard router apply`: change the server-wide router settings, explicitly."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

import typer

from dockyard import values
from dockyard.certs.ensure import ensure_certs
from dockyard.cli.context import AppContext, get, group
from dockyard.config.duration import parse_duration
from dockyard.config.model import Config, ProxyConfig
from dockyard.docker import networks
from dockyard.errors import DockyardError
from dockyard.host.runner import Runner
from dockyard.router import config as rc
from dockyard.router import logs as logs_mod
from dockyard.router.ensure import can_hand_over, ensure_router, hand_over, recreate_router
from dockyard.server.setup import state_dir_commands
from dockyard.state import proxy as proxy_state
from dockyard.state import snapshot

app = group("The server-wide router (dockyard-router).")


@dataclass
class _Plan:
    """What `router apply` does on one host."""

    runner: Runner
    snap: snapshot.Snapshot
    new: ProxyConfig
    changed: list[str]
    handover: bool
    recreate: bool
    start: bool


def _plan(obj: AppContext, runner: Runner, cfg: Config) -> _Plan | None:
    """Read one host and say what would change there; None when nothing would."""
    # no lock held meanwhile: the router's files are written under the router lock, and only
    # if no app changed the routes since they were read (router/writer.py)
    names = snapshot.facts(None, cfg)
    snap = snapshot.assemble(list(names), runner.read(*names.values()))
    runner.scripts_ready = snap.scripts
    new = proxy_state.applied(cfg, snap.proxy)
    changed = proxy_state.changed_keys(snap.proxy, new)
    moves = snap.router.on_legacy_network
    start = not snap.router.exists
    if snap.proxy is not None and not changed and not moves and not start:
        obj.say(f"{runner.host.label}: the router settings already match; nothing to do")
        return None
    replace = snap.router.exists and (
        moves or any(k in proxy_state.RECREATE_KEYS for k in changed))
    # a new image or configuration: a new HAProxy takes the sockets over (no request lost);
    # new ports, or a router of the earlier layout: both containers are made again
    handover = replace and can_hand_over(snap) and not moves and not any(
        k in proxy_state.PORT_KEYS for k in changed)
    recreate = replace and not handover
    obj.err.print(f"on {runner.host.label}, for every app on this server:")
    for key in changed:
        before = "(unset)" if snap.proxy is None else repr(getattr(snap.proxy, key))
        obj.err.print(f"  [proxy] {key}: {before} -> {getattr(new, key)!r}")
    if moves:
        obj.err.print(f"  the router moves from its earlier network "
                      f"({networks.LEGACY_ROUTER_NETWORK}) to {networks.ROUTER_NETWORK}: then "
                      "its published ports never move when an app's network comes or goes")
    if handover:
        obj.err.print("  a new HAProxy container takes over from the running one: it takes "
                      "the listening sockets, the old one finishes its requests; no request "
                      "is lost")
    if recreate:
        obj.err.print("  the router containers will be recreated (ports are fixed when a "
                      "container starts"
                      + ("; this moves the router to containers whose HAProxy can be "
                         "replaced with no outage from now on" if snap.router.legacy else "")
                      + "): every app is unreachable for about a second")
    if start:
        obj.err.print(f"  the router is not running yet: it starts with these settings "
                      f"(ports {new.http_port} and {new.https_port})")
    return _Plan(runner, snap, new, changed, handover, recreate, start)


def _carry_out(obj: AppContext, plan: _Plan) -> None:
    runner, snap, new = plan.runner, plan.snap, plan.new
    setup = [] if snap.state_dir else state_dir_commands(snap.who)
    runner.change_all([*setup, proxy_state.write_command(new)])
    if plan.handover:
        hand_over(runner, new, snap)
    elif plan.recreate:
        recreate_router(runner, new, snap)
    elif plan.start:
        snap.state_dir = True
        ensure_router(runner, new, snap)
    if snap.certs is not None and (plan.recreate or any(k in proxy_state.ACME_KEYS
                                                        for k in plan.changed)):
        # the ACME client follows the new settings (and a new router's namespace)
        ensure_certs(runner, new, gid=snap.who.gid, current=snap.certs, force=True,
                     image_present=snap.images.get(new.acme_image, False))
    runner.flush_audit()
    if not runner.dry_run:
        done = ("applied; a new HAProxy took over" if plan.handover else
                "applied; the router was recreated" if plan.recreate else
                "applied; the router runs" if plan.start else "applied")
        obj.say(f"{runner.host.label}: router settings {done}")


@app.command("apply")
def apply(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
) -> None:
    """Apply this file's [proxy] settings to the server (with several [server] hosts: to
    each of them, one after the other), for every app on it."""
    obj = get(ctx)
    cfg = obj.config()
    first = obj.runner()
    plans = [plan for runner in (first, *first.peers)
             if (plan := _plan(obj, runner, cfg)) is not None]
    if not plans:
        return
    # whether there is anything to confirm depends on the servers: asked after reading them
    obj.need_confirmation(yes, "router apply")
    obj.confirm("apply?", yes)
    for plan in plans:  # one router at a time: the others serve meanwhile
        _carry_out(obj, plan)


@app.command("logs")
def logs(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new requests.")]
    = False,
    app_name: Annotated[str | None, typer.Option(
        "--app", metavar="APP", help="Only this app's requests (default: every app).")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", metavar="CODES", help="Only these statuses: 503, 5xx, or 4xx,5xx.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="DURATION", help="Only the last DURATION, e.g. 10m.")] = None,
) -> None:
    """The router's recent requests, from its memory: the last ~40,000 requests, and the
    last ~10,000 that ended in an error (5xx, aborts, timeouts); a router restart empties
    them. An app's own output is `dockyard logs`."""
    obj = get(ctx)
    if status is not None and not logs_mod.STATUS.fullmatch(status):
        raise DockyardError("DY005", f"--status {values.shown(status)}: write a status such as "
                            "503, a class such as 5xx, or a list: 4xx,5xx")
    cutoff = None
    if since is not None:
        try:
            seconds = parse_duration(since)
        except ValueError as exc:
            raise DockyardError("DY005", f"--since: {exc}") from None
        cutoff = logs_mod.now() - timedelta(seconds=seconds)
    if app_name is not None:
        try:
            values.app_name(app_name)
        except ValueError as exc:
            raise DockyardError("DY005", f"--app: {exc}") from None
    runner = obj.runner()
    routes = runner.read_one(snapshot.routes())
    apps = {r.backend: r.app for r in routes.routes}
    if app_name is not None and app_name not in apps.values():
        known = ", ".join(sorted(apps.values())) or "none"
        raise DockyardError("DY055", f"{app_name} has no route on {runner.host.label}; the "
                            f"apps there: {known}")

    def wanted(r: logs_mod.Request) -> bool:
        return logs_mod.keep(r, app=app_name, status=status, since=cutoff)

    requests = logs_mod.parse(runner.api(logs_mod.show(rc.REQUESTS_RING)), apps)
    errors = logs_mod.parse(runner.api(logs_mod.show(rc.ERRORS_RING)), apps)
    found = [r for r in logs_mod.merged(requests, errors) if wanted(r)]
    if obj.json and not follow:
        obj.emit_json([r.as_dict() for r in found])
        return
    for request in found:
        _print_request(obj, request)
    if follow:
        for line in runner.api_stream(logs_mod.show(rc.REQUESTS_RING, follow=True)):
            new = logs_mod.parse_line(line, apps)
            if new is not None and wanted(new):
                _print_request(obj, new)


def _print_request(obj: AppContext, request: logs_mod.Request) -> None:
    if obj.json:
        sys.stdout.write(json.dumps(request.as_dict()) + "\n")
    else:
        sys.stdout.write(values.printable(request.line()) + "\n")
    sys.stdout.flush()
