"""`dockyard domains add|remove|list` and `dockyard certs renew`: names and certificates
without a deploy. Orchestration only."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard import values
from dockyard.certs import acme
from dockyard.cli.context import AppContext, get, group
from dockyard.cli.tables import Column, fitted
from dockyard.deploy import domains as flows
from dockyard.deploy import tls
from dockyard.deploy.target import locked, prepare
from dockyard.errors import DockyardError
from dockyard.state.releases import read_state

app = group("The app's host names (the server's list is the truth).")
certs_app = group("Certificates (ACME, obtained and renewed on the server).")

Names = Annotated[list[str], typer.Argument(metavar="NAME", help="Host names, e.g. www.example.com.")]


def _report(obj: AppContext, domains: list[str], waiting: list[str]) -> None:
    if obj.runner().dry_run:
        return
    if obj.json:
        obj.emit_json({"app": obj.config().app.name, "domains": domains, "waiting": waiting})
        return
    obj.say(f"{obj.config().app.name}: {', '.join(domains) or 'no domains'}")
    for name in waiting:
        obj.say(f"{name}: no certificate yet; served over HTTP meanwhile (see: dockyard status)")


@app.command("add")
def add(ctx: typer.Context, names: Names) -> None:
    """Route more names to the app now (no deploy) and obtain their certificates."""
    obj = get(ctx)
    domains, waiting = flows.change(obj.runner(), obj.config(), obj.progress(),
                                    add=list(names), remove=[])
    _report(obj, domains, waiting)


@app.command("remove")
def remove(ctx: typer.Context, names: Names) -> None:
    """Stop routing names to the app (their certificates stay on the server)."""
    obj = get(ctx)
    domains, _ = flows.change(obj.runner(), obj.config(), obj.progress(), add=[],
                              remove=list(names))
    _report(obj, domains, [])


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The names the server routes to the app, and how each is served."""
    obj = get(ctx)
    runner = obj.runner()
    state = runner.read_one(read_state(obj.config().app.name))
    if state.route is None:
        raise DockyardError("DY055", f"{obj.config().app.name} has not been deployed to "
                            f"{runner.host.label} yet; run: dockyard deploy")
    rows = tls.certificate_rows(runner, state.route.domains, state.route.tls)
    file_only = [d for d in obj.config().web.domains if d not in state.route.domains]
    if obj.json:
        obj.emit_json({"domains": rows, "only_in_file": file_only})
        return
    obj.console.print(fitted(
        [Column("domain", key=True), Column("https"), Column("issuer", drop=2),
         Column("expires", drop=1)],
        [[r["domain"], r["https"], r["issuer"], r["expires"]] for r in rows],
        width=obj.console.width))
    if file_only:
        obj.say(f"in dockyard.toml but not on the server (the next deploy adds them): "
                f"{', '.join(file_only)}")


@certs_app.command("renew")
def renew(ctx: typer.Context, names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME", help="Names to renew (default: all of the app's HTTPS names).")] = None) -> None:
    """Order new certificates now, instead of waiting for a third of their lifetime."""
    obj = get(ctx)
    for name in names or []:
        try:
            values.domain(name)
        except ValueError as exc:
            raise DockyardError("DY005", str(exc)) from None
    runner = obj.runner()
    with locked(runner, obj.config(), obj.progress(), "certs renew") as t:
        prepare(t, create=False)
        assert t.route is not None
        mine = acme.tls_domains(t.route.domains, t.route.tls)
        wanted = list(names or mine)
        unknown = [n for n in wanted if n not in mine]
        if unknown:
            raise DockyardError("DY005", f"{unknown[0]} is not one of {t.app}'s HTTPS names "
                                f"({', '.join(mine) or 'none'})")
        failed = tls.renew(t, wanted)
        runner.flush_audit()
    if failed:
        raise DockyardError("DY070", f"renewing {', '.join(failed)} failed; the current "
                            "certificates stay in place (see: dockyard status)")
    if not runner.dry_run:
        obj.say(f"renewed: {', '.join(wanted)}")
