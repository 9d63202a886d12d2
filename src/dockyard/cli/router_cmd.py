"""`dockyard router apply`: change the server-wide router settings, explicitly."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard.certs.ensure import current_state, ensure_certs
from dockyard.cli.context import get
from dockyard.router import container as router
from dockyard.router.ensure import recreate_router
from dockyard.server.setup import ensure_state_dir, identity
from dockyard.state import proxy as proxy_state

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
    raw = runner.query(proxy_state.read_command(), check=False)
    current = proxy_state.parse(raw.out) if raw.ok else None
    new = proxy_state.applied(cfg, current)
    changed = proxy_state.changed_keys(current, new)
    if current is not None and not changed:
        obj.say(f"{runner.host.label}: the router settings already match; nothing to do")
        return
    has_router = bool(runner.query(router.exists(), check=False).out.strip())
    recreate = has_router and any(k in proxy_state.RECREATE_KEYS for k in changed)

    lines = []
    for key in changed:
        before = "(unset)" if current is None else repr(getattr(current, key))
        lines.append(f"  [proxy] {key}: {before} -> {getattr(new, key)!r}")
    obj.err.print(f"on {runner.host.label}, for every app on this server:", markup=False)
    for line in lines:
        obj.err.print(line, markup=False)
    if recreate:
        obj.err.print("  the dockyard-router container will be recreated (ports and image are "
                      "fixed when it starts): every app is unreachable for about a second",
                      markup=False)
    # whether there is anything to confirm depends on the server: asked after reading it
    obj.need_confirmation(yes, "router apply")
    obj.confirm("apply?", yes)

    ensure_state_dir(runner)
    runner.change(proxy_state.write_command(new))
    if recreate:
        recreate_router(runner, new, gid=identity(runner).gid)
    elif any(k in proxy_state.ACME_KEYS for k in changed):
        certs = current_state(runner)
        if certs is not None:  # the ACME client follows the new settings
            ensure_certs(runner, new, gid=identity(runner).gid, current=certs, force=True)
    runner.flush_audit()
    if not runner.dry_run:
        done = "applied; the router was recreated" if recreate else "applied"
        obj.say(f"{runner.host.label}: router settings {done}")
