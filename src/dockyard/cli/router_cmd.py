"""`dockyard router apply`: change the server-wide router settings, explicitly."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard.certs import acme
from dockyard.certs.ensure import ensure_certs
from dockyard.cli.context import get
from dockyard.router.ensure import recreate_router
from dockyard.server.setup import state_dir_commands
from dockyard.state import proxy as proxy_state
from dockyard.state import snapshot

app = typer.Typer(help="The server-wide router (dockyard-router).", no_args_is_help=True)


@app.command("apply")
def apply(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
) -> None:
    """Apply this file's [proxy] settings to the server, for every app on it."""
    obj = get(ctx)
    cfg = obj.config()
    runner = obj.runner()
    # no lock held meanwhile: the router's files are written under the router lock, and only
    # if no app changed the routes since they were read (router/writer.py)
    names = snapshot.facts(None, cfg)
    snap = snapshot.assemble(list(names), runner.read(*names.values()))
    runner.scripts_ready = snap.scripts
    new = proxy_state.applied(cfg, snap.proxy)
    changed = proxy_state.changed_keys(snap.proxy, new)
    if snap.proxy is not None and not changed:
        obj.say(f"{runner.host.label}: the router settings already match; nothing to do")
        return
    recreate = snap.router.exists and any(k in proxy_state.RECREATE_KEYS for k in changed)
    obj.err.print(f"on {runner.host.label}, for every app on this server:")
    for key in changed:
        before = "(unset)" if snap.proxy is None else repr(getattr(snap.proxy, key))
        obj.err.print(f"  [proxy] {key}: {before} -> {getattr(new, key)!r}")
    if recreate:
        obj.err.print("  the dockyard-router container will be recreated (ports and image "
                      "are fixed when it starts): every app is unreachable for about a "
                      "second")
    # whether there is anything to confirm depends on the server: asked after reading it
    obj.need_confirmation(yes, "router apply")
    obj.confirm("apply?", yes)
    setup = [] if snap.state_dir else state_dir_commands(snap.who)
    runner.change_all([*setup, proxy_state.write_command(new)])
    if recreate:
        recreate_router(runner, new, snap)
    if snap.certs is not None and (recreate or any(k in proxy_state.ACME_KEYS
                                                   for k in changed)):
        # the ACME client follows the new settings (and a new router's namespace)
        ensure_certs(runner, new, gid=snap.who.gid, current=snap.certs, force=True,
                     image_present=snap.images.get(new.acme_image, False))
    runner.flush_audit()
    if not runner.dry_run:
        done = "applied; the router was recreated" if recreate else "applied"
        obj.say(f"{runner.host.label}: router settings {done}")


__all__ = ["acme", "app"]
