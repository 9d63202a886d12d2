"""`dockyard server check|setup|status|prune`: is the server ready, make it so, what runs
on it and what its disk holds, and free what nothing needs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from dockyard.cli.context import get, group
from dockyard.cli.tables import Column, fitted
from dockyard.errors import DockyardError
from dockyard.server import check as checks
from dockyard.server import disk
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


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Every app on the server (release, health, domains, containers per process) and the
    disk: images, containers, volumes, build cache, logs, backups; with warnings."""
    obj = get(ctx)
    runner = obj.runner()
    seen = runner.read_one(disk.status())
    if obj.json:
        obj.emit_json({"host": runner.host.label, **seen.as_dict()})
        return
    width = obj.console.width
    obj.console.print(fitted(
        [Column("app", key=True), Column("release", key=True), Column("health"),
         Column("containers"), Column("domains", whole=True)],
        [[a.name, a.release, a.health,
          ", ".join(f"{p} {up}/{total}" for p, (up, total) in sorted(a.processes.items())),
          "\n".join(a.domains)] for a in seen.apps],
        width=width, title=f"apps on {runner.host.label}"))
    rows = [[kind, size, reclaimable] for kind, (size, reclaimable) in seen.docker.items()]
    rows += [["Container logs", disk.human(seen.logs_bytes), ""],
             ["Backups", disk.human(seen.backups_bytes), ""],
             ["Filesystem", f"{seen.used_percent}% used",
              f"{disk.human(seen.fs_avail_kb * 1024)} free"]]
    obj.console.print(fitted([Column("disk", key=True), Column("size"), Column("reclaimable")],
                             rows, width=width))
    for warning in seen.warnings():
        obj.console.print(Text(f"warning: {warning}", style="yellow"))


@app.command("prune")
def prune(ctx: typer.Context) -> None:
    """Remove what no kept release, accessory or backup needs: release images beyond each
    app's keep_releases (its live one always stays) and of apps no longer on the server,
    Dockyard's dangling images, stopped app containers. Volumes are listed, never removed.
    --dry-run lists."""
    obj = get(ctx)
    runner = obj.runner()
    if obj.dry_run:
        found = runner.read_one(disk.prunable())
        removed: list[disk.Prunable] = []
    else:
        done = runner.change(disk.prune())
        found = disk.parse_removed(done.out)
        removed = [p for p in found if p.kind != "volume"]
    if obj.json:
        obj.emit_json({"host": runner.host.label, "dry_run": obj.dry_run,
                       "items": [{"kind": p.kind, "name": p.name, "bytes": p.size,
                                  "removed": p in removed} for p in found]})
        return
    verb = "would remove" if obj.dry_run else "removed"
    for item in found:
        if item.kind == "volume":
            obj.say(f"kept volume {item.name}: its app is gone from the server; remove it "
                    f"yourself once its data is not needed (docker volume rm {item.name})")
        else:
            size = f" ({disk.human(item.size)})" if item.size else ""
            obj.say(f"{verb} {item.kind} {item.name}{size}")
    total = sum(p.size for p in found if p.kind == "image")
    count = sum(1 for p in found if p.kind != "volume")
    obj.say(f"{runner.host.label}: {verb} {count} item(s)"
            + (f", images of {disk.human(total)} (shared layers count once on disk)"
               if total else "") if count else f"{runner.host.label}: nothing to prune")
