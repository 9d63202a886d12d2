"""`dockyard accessory ...`, `dockyard backup`, `dockyard backups`, `dockyard restore`.

Orchestration only: the work happens in dockyard.accessories.flows.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer

from dockyard import values
from dockyard.accessories import commands as cmds
from dockyard.accessories import flows
from dockyard.accessories.spec import Accessory, resolve
from dockyard.cli import context
from dockyard.cli.context import AppContext, get
from dockyard.cli.tables import Column, fitted
from dockyard.errors import DockyardError

app = context.group("Services next to the app (databases, caches): boot, start, stop, "
                  "restart, logs, exec, upgrade, remove.")

NameArg = Annotated[str, typer.Argument(metavar="NAME",
                                        help="The accessory's name, from [accessories.NAME].")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _site(obj: AppContext) -> flows.Site:
    """The server as it is (read-only commands)."""
    return flows.read_site(obj.runner(), obj.config(), obj.config_path.resolve().parent,
                           obj.progress())


def _session(obj: AppContext, what: str) -> AbstractContextManager[flows.Site]:
    """The app's lock, and the server read under it (commands that change something)."""
    return flows.session(obj.runner(), obj.config(), obj.config_path.resolve().parent,
                         obj.progress(), what)


def _declared(obj: AppContext, name: str) -> None:
    """The config alone says which accessories exist: checked before connecting."""
    resolve(obj.config(), name, obj.config_path.resolve().parent)


def _one(site: flows.Site, name: str) -> Accessory:
    return site.accessory(name)


def _done(obj: AppContext, message: str) -> None:
    if not obj.runner().dry_run:
        obj.say(message)


@app.command("boot")
def boot(ctx: typer.Context, name: Annotated[str, typer.Argument(
        metavar="NAME", help="The accessory's name, or all.")]) -> None:
    """Start an accessory that is not running yet (volumes, env, files, container) and wait
    until it answers."""
    obj = get(ctx)
    if name != "all":
        _declared(obj, name)
    obj.runner().on_failure = ("the boot stops here; the app's running release is not "
                               "touched, and what was created (volume, env file) is reused "
                               "by the next boot")
    with _session(obj, f"accessory boot {name}") as site:
        targets = site.all() if name == "all" else [_one(site, name)]
        for acc in targets:
            found = site.running(acc)
            if found is not None:
                obj.say(f"{acc.name} is already booted ({found.state}); to apply changed "
                        f"settings run: dockyard accessory upgrade {acc.name}")
                continue
            flows.boot(site, acc)
            _done(obj, f"{acc.name} is up: the app reaches it as {acc.name} on the "
                  f"{acc.network} network")
        flows.update_schedule(site)


def _simple(ctx: typer.Context, name: str, verb: str) -> None:
    obj = get(ctx)
    _declared(obj, name)
    builder = {"start": cmds.start, "stop": cmds.stop, "restart": cmds.restart}[verb]
    with _session(obj, f"accessory {verb} {name}") as site:
        acc = _one(site, name)
        flows.require(site, acc)
        site.runner.change(builder(acc))
        if verb != "stop":
            flows.wait_ready(site, acc)
    _done(obj, f"{acc.name}: {verb} done")


@app.command("start")
def start(ctx: typer.Context, name: NameArg) -> None:
    """Start a stopped accessory and wait until it answers."""
    _simple(ctx, name, "start")


@app.command("stop")
def stop(ctx: typer.Context, name: NameArg) -> None:
    """Stop an accessory (its data stays; the app cannot reach it until started)."""
    _simple(ctx, name, "stop")


@app.command("restart")
def restart(ctx: typer.Context, name: NameArg) -> None:
    """Restart an accessory's container and wait until it answers."""
    _simple(ctx, name, "restart")


@app.command("logs")
def logs(
    ctx: typer.Context, name: NameArg,
    follow: context.FollowOpt = False,
    lines: context.LinesOpt = 100,
) -> None:
    """Show an accessory's logs."""
    obj = get(ctx)
    _declared(obj, name)
    site = _site(obj)
    acc = _one(site, name)
    flows.require(site, acc)
    cmd = cmds.logs(acc, tail=lines, follow=follow)
    raise typer.Exit(site.runner.host.interactive(list(cmd.argv), tty=False))


@app.command("exec", context_settings={"allow_interspersed_args": False,
                                       "ignore_unknown_options": True})
def exec_(ctx: typer.Context, args: Annotated[list[str], typer.Argument(
        metavar="NAME -- CMD", help="The accessory, then the command after --.")]) -> None:
    """Run a command inside an accessory: dockyard accessory exec db -- psql -U app"""
    obj = get(ctx)
    before, raw = context.passthrough(["accessory", "exec"], list(args))
    if not before and raw:  # no "--": the first word names the accessory
        before, raw = raw[:1], raw[1:]
    unknown = [w for w in before if w.startswith("-")]
    if unknown:
        raise DockyardError("DY005", f"no such option: {values.shown(unknown[0])}; write: "
                            "dockyard accessory exec NAME -- CMD...")
    if len(before) != 1 or not raw:
        raise DockyardError("DY005", "write: dockyard accessory exec NAME -- CMD...")
    _declared(obj, before[0])
    site = _site(obj)
    acc = _one(site, before[0])
    flows.require(site, acc, running=True)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    raise typer.Exit(site.runner.interactive(cmds.exec_in(acc, raw, tty=tty), tty=tty))


@app.command("upgrade")
def upgrade(ctx: typer.Context, name: NameArg) -> None:
    """Run the image (and settings) in dockyard.toml on the same data: a backup first, then
    the container is replaced. Refuses a PostgreSQL major-version change."""
    obj = get(ctx)
    _declared(obj, name)
    with _session(obj, f"accessory upgrade {name}") as site:
        acc = _one(site, name)
        taken = flows.upgrade(site, acc)
    note = f" (backup {taken} taken first)" if taken else ""
    _done(obj, f"{acc.name} runs {acc.image} on the same data{note}")


@app.command("remove")
def remove(ctx: typer.Context, name: NameArg, yes: YesOpt = False,
           volumes: Annotated[bool, typer.Option(
               "--volumes", help="Also delete its volumes (its data).")] = False) -> None:
    """Remove an accessory's container; its volumes and backups stay unless --volumes."""
    obj = get(ctx)
    _declared(obj, name)
    obj.need_confirmation(yes, "accessory remove")
    with _session(obj, f"accessory remove {name}") as site:
        acc = _one(site, name)
        flows.require(site, acc)
        data = "and DELETE its data" if volumes else "(its volumes and backups are kept)"
        obj.confirm(f"remove {acc.container} {data}?", yes)
        flows.remove(site, acc, volumes=volumes)
    _done(obj, f"{acc.name}: removed" + (" with its volumes" if volumes else
                                         "; its volumes are kept"))


# -- backups (top-level commands) ----------------------------------------------------------

def backup(
    ctx: typer.Context, name: NameArg,
    download: Annotated[Path | None, typer.Option(
        "--download", help="Also copy it to this directory, checking its SHA-256.")] = None,
) -> None:
    """Back up an accessory to /var/lib/dockyard/backups/<app>/<name>/ on the server."""
    obj = get(ctx)
    _declared(obj, name)
    if download is not None and download.exists() and not download.is_dir():
        raise DockyardError("DY005", f"--download {values.printable(str(download))} is a file; "
                            "give a directory (it is created when missing)")
    obj.runner().on_failure = ("no backup is kept (the partial file is deleted); the "
                               "accessory keeps running, or is started again")
    with _session(obj, f"backup {name}") as site:
        acc = _one(site, name)
        taken = flows.take_backup(site, acc)
    local = flows.download(site, acc, taken, download) if download is not None else None
    if site.runner.dry_run:
        return
    if obj.json:
        obj.emit_json({**taken.as_dict(), "downloaded": str(local) if local else None})
        return
    obj.say(f"{acc.name}: backup {taken.id} ({taken.size} bytes, sha256 {taken.sha256[:16]}…)")
    if local is not None:
        obj.say(f"copied to {local} (SHA-256 checked)")


def list_backups(ctx: typer.Context, name: NameArg) -> None:
    """An accessory's backups on the server, oldest first."""
    obj = get(ctx)
    _declared(obj, name)
    site = _site(obj)
    acc = _one(site, name)
    found = flows.list_backups(site, acc)
    if obj.json:
        obj.emit_json([b.as_dict() for b in found])
        return
    columns = [Column("id", key=True), Column("time", drop=2), Column("kind"),
               Column("size", key=True), Column("sha256", drop=3)]
    rows = [[b.id, b.time, b.why, f"{b.size:,}", b.sha256[:16] + "…"] for b in found]
    obj.console.print(fitted(columns, rows, width=obj.console.width,
                             title=f"{acc.name} backups in {acc.backup_dir}"))


def restore(
    ctx: typer.Context, name: NameArg,
    backup_id: Annotated[str | None, typer.Argument(
        metavar="BACKUP", help="A backup id from `dockyard backups NAME`.")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from-file", help="Restore a dump from this machine (it is uploaded first).")]
    = None,
    yes: YesOpt = False,
) -> None:
    """Restore an accessory from a backup: a safety backup first, the app in maintenance
    (503) meanwhile, then back."""
    obj = get(ctx)
    obj.runner().on_failure = ("the restore stops; the safety backup taken first holds the "
                               "data as it was (dockyard restore NAME ITS-ID), and the app "
                               "comes out of maintenance")
    if (backup_id is None) == (from_file is None):
        raise DockyardError("DY005", "give a backup id or --from-file PATH (one of them); "
                            "see: dockyard backups NAME")
    _declared(obj, name)
    if backup_id is not None:
        try:
            values.backup_id(backup_id)
        except ValueError as exc:
            raise DockyardError("DY005", str(exc)) from None
    if from_file is not None:
        flows.check_upload(resolve(obj.config(), name, obj.config_path.resolve().parent),
                           from_file)
    obj.need_confirmation(yes, "restore")
    with _session(obj, f"restore {name}") as site:
        acc = _one(site, name)
        flows.require(site, acc)
        what = backup_id or str(from_file)
        obj.confirm(f"replace {acc.name}'s data with {what}? (a safety backup is taken first)",
                    yes)
        if from_file is not None:
            chosen = flows.upload(site, acc, from_file)
        else:
            assert backup_id is not None
            chosen = flows.find_backup(site, acc, backup_id)
        safety = flows.restore(site, acc, chosen)
    if obj.json and not site.runner.dry_run:
        obj.emit_json({"accessory": acc.name, "restored": chosen.id, "safety_backup": safety})
        return
    _done(obj, f"{acc.name}: restored from {chosen.id}; the data before it is in backup "
          f"{safety}")
