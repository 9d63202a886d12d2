"""`dockyard site add|list|remove`: the router serves names for services that are not
Dockyard apps (Dockyard in front of what a server already runs)."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard import values
from dockyard.cli.context import get, group
from dockyard.cli.tables import Column, fitted
from dockyard.deploy import sites
from dockyard.deploy.remove import remove_app
from dockyard.errors import DockyardError

app = group("Names the router serves for services that are not Dockyard apps.")

Domain = Annotated[str, typer.Argument(metavar="DOMAIN", help="The name, e.g. blog.example.com.")]


def _domain(value: str) -> str:
    try:
        return values.domain(value)
    except ValueError as exc:
        raise DockyardError("DY005", str(exc)) from None


@app.command("add")
def add(
    ctx: typer.Context,
    domain: Domain,
    to: Annotated[str, typer.Option("--to", metavar="TARGET", help="host:PORT (a port on the "
                                    "server, reached at its address on Docker's bridge, e.g. "
                                    "172.17.0.1) or CONTAINER:PORT.")],
    no_tls: Annotated[bool, typer.Option("--no-tls", help="Plain HTTP only: no certificate, "
                                         "no redirect.")] = False,
    health: Annotated[str, typer.Option("--health", metavar="PATH",
                                        help="The path the router checks.")] = "/",
) -> None:
    """Route DOMAIN to a service that is not a Dockyard app, with HTTPS and health checks."""
    obj = get(ctx)
    domain = _domain(domain)
    sites.parse_to(to)
    route = sites.add(obj.runner(), obj.config(), obj.progress(), domain, to,
                      tls_on=not no_tls, health=health)
    if not obj.runner().dry_run:
        obj.say(f"{domain} goes to {to} (router slot {route.backend})")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """The sites on the server and where each forwards."""
    obj = get(ctx)
    found = sites.listing(obj.runner())
    if obj.json:
        obj.emit_json([{"domain": r.domains[0] if r.domains else "", "to": r.site,
                        "https": r.tls, "slot": r.backend} for r in found])
        return
    obj.console.print(fitted(
        [Column("domain", key=True), Column("to", key=True), Column("https"),
         Column("slot", drop=1)],
        [[", ".join(r.domains), r.site, "yes" if r.tls else "no", r.backend] for r in found],
        width=obj.console.width))


@app.command("remove")
def remove(ctx: typer.Context, domain: Domain) -> None:
    """Stop routing DOMAIN to its service (the service itself is not touched)."""
    obj = get(ctx)
    domain = _domain(domain)
    cfg = sites.site_config(obj.config(), domain, 80, tls_on=True, health="/")
    known = {r.domains[0] for r in sites.listing(obj.runner()) if r.domains}
    if domain not in known:
        raise DockyardError("DY005", f"{domain} is not a site on {obj.runner().host.label}; "
                            "see: dockyard site list")
    removed = remove_app(obj.runner(), cfg, obj.progress(), volumes_too=False)
    for line in [*removed.done, *(f"kept {k}" for k in removed.kept)]:
        obj.say(f"{domain}: {line}")
