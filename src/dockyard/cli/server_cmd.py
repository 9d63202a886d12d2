"""`dockyard server check|setup`: is the server ready, and make it so."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from dockyard.cli.context import get, group
from dockyard.cli.tables import Column, fitted
from dockyard.errors import DockyardError
from dockyard.server import check as checks
from dockyard.server import setup as server_setup

app = group("Check and prepare the server.")

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


@app.command("check")
def check(
    ctx: typer.Context,
    through: Annotated[list[int] | None, typer.Option(
        "--through", metavar="PORT", min=1, max=65535,
        help="With the router behind a web server on this machine: the port(s) that server "
        "takes the app's names on (default: 80 and 443).")] = None,
) -> None:
    """Reachability, Docker version, disk, ports and permissions, with what to fix; who
    holds the ports, the Docker networks, the firewall; behind a web server, whether a
    request to each of the app's names goes through it to the router."""
    obj = get(ctx)
    runner = obj.runner()
    rows = checks.run_checks(runner, obj.config(), through)
    failed = checks.blocking(rows)
    if obj.json:
        obj.emit_json({"host": runner.host.label, "ok": not failed,
                       "checks": [r.as_dict() for r in rows]})
    else:
        obj.console.print(fitted(
            [Column("check", key=True), Column("status", key=True), Column("detail"),
             Column("to fix")],
            [[row.check, Text(row.level, style=_STYLE[row.level]), row.detail, row.fix]
             for row in rows],
            width=obj.console.width, title=f"server check: {runner.host.label}"))
    if failed:
        raise DockyardError(
            "DY015",
            f"{len(failed)} problem(s) on {runner.host.label} would stop a deploy: "
            + "; ".join(f"{r.check}: {r.detail}" for r in failed),
        )


@app.command("setup")
def setup(
    ctx: typer.Context,
    install_docker: Annotated[bool, typer.Option(
        "--install-docker", help="Install Docker from the distribution's packages if missing."
    )] = False,
) -> None:
    """Create /var/lib/dockyard (and install Docker when asked). Safe to run twice."""
    obj = get(ctx)
    runner = obj.runner()
    done = server_setup.setup(runner, install_docker=install_docker)
    if obj.dry_run:
        return
    if obj.json:
        obj.emit_json({"host": runner.host.label, "done": done})
    else:
        for line in done:
            obj.say(f"{runner.host.label}: {line}")
