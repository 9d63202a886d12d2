"""App commands: deploy, rollback, restart, releases, status, logs, run, exec, remove, lock.

Orchestration only: the work happens in dockyard.deploy; this module reads options, prints
results, and keeps stdout clean (data or the remote command's output) with messages on
stderr.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from dockyard import values
from dockyard.cli import context
from dockyard.cli.context import AppContext, get
from dockyard.cli.tables import Column, fitted
from dockyard.deploy import deploy as flows
from dockyard.deploy import tls
from dockyard.deploy.progress import Progress
from dockyard.deploy.remove import remove_app
from dockyard.deploy.rollout import with_extras
from dockyard.deploy.status import app_view
from dockyard.docker import containers as ctr
from dockyard.errors import DockyardError
from dockyard.notify import Notifier
from dockyard.state import audit
from dockyard.state import lock as locks
from dockyard.state.releases import read_state

PASSTHROUGH = {"allow_interspersed_args": False, "ignore_unknown_options": True}


def _progress(obj: AppContext) -> Progress:
    return obj.progress()


def _config_dir(obj: AppContext) -> Path:
    return obj.config_path.resolve().parent


def _summary(obj: AppContext, result: flows.Result, verb: str) -> None:
    cfg = obj.config()
    runner = obj.runner()
    if runner.dry_run:
        return
    if obj.json:
        obj.emit_json({"app": cfg.app.name, "release": result.release.name, "action": verb,
                       "seconds": result.seconds, "urls": result.urls,
                       "certificate_wait_seconds": round(result.certificate_wait, 1),
                       "timings": {k: round(v, 3) for k, v in result.timings.items()},
                       "container": result.outcome.web if result.outcome else None})
    else:
        obj.err.print(result.summary(cfg.app.name), markup=False)


@contextmanager
def _notified(obj: AppContext, action: str) -> Iterator[dict[str, object]]:
    """Notifications: ACTION.started (deploys), .succeeded with what the block put in the dict,
    .failed with the error; never under --dry-run. Waits for the sends at most the timeout."""
    cfg = obj.config()
    if obj.dry_run or not (cfg.notify.webhook or cfg.notify.command):
        yield {}
        return
    runner = obj.runner()
    notifier = Notifier(cfg.notify, cfg.app.name, runner.host.label, runner.redact,
                        obj.destination)
    if action == "deploy":
        notifier.send("deploy.started")
    done: dict[str, object] = {}
    try:
        yield done
    except DockyardError as exc:
        notifier.send(f"{action}.failed", error=exc.code, message=exc.message)
        raise
    except BaseException as exc:
        notifier.send(f"{action}.failed", error=type(exc).__name__,
                      message="interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc))
        raise
    else:
        notifier.send(f"{action}.succeeded", **done)
    finally:
        notifier.close()
        if obj.verbose:
            for event, target, outcome in notifier.results:
                obj.err.print(f"notify: {event} to the {target}: {outcome}")


def deploy(
    ctx: typer.Context,
    image: Annotated[str | None, typer.Option(
        "--image", metavar="REF", help="Deploy this image from a registry instead of "
        "building, e.g. ghcr.io/me/app:${GITHUB_SHA} (the CI path; [registry] credentials "
        "apply).")] = None,
) -> None:
    """Build the app (on the server, or on this machine with [build] builder = "local"),
    run its release command, and switch traffic to it with zero dropped requests, or change
    nothing."""
    obj = get(ctx)
    if image is not None:
        try:
            image = values.image_ref(image)
        except ValueError as exc:
            raise DockyardError("DY005", f"--image: {exc}") from None
    with _notified(obj, "deploy") as done:
        result = flows.deploy(obj.runner(), obj.config(), _config_dir(obj), _progress(obj),
                              image=image)
        done.update(release=result.release.name, seconds=round(result.seconds, 1),
                    urls=result.urls, image=result.release.image_source or None)
    _summary(obj, result, "deploy")


def rollback(
    ctx: typer.Context,
    release: Annotated[str | None, typer.Argument(metavar="RELEASE", help="Release to go back to, e.g. v3 "
                                                  "(default: the previous one).")] = None,
) -> None:
    """Switch back to an earlier release's image and environment (no rebuild)."""
    obj = get(ctx)
    number = None
    if release is not None:
        try:
            number = values.release_number(release)
        except ValueError as exc:
            raise DockyardError("DY005", str(exc)) from None
    with _notified(obj, "rollback") as done:
        result = flows.rollback(obj.runner(), obj.config(), _progress(obj), number)
        done.update(release=result.release.name, seconds=round(result.seconds, 1),
                    urls=result.urls, rollback_of=result.release.rollback_of)
    _summary(obj, result, "rollback")


def restart(ctx: typer.Context) -> None:
    """Replace the current release's containers with fresh ones, with zero downtime."""
    obj = get(ctx)
    result = flows.restart(obj.runner(), obj.config(), _progress(obj))
    _summary(obj, result, "restart")


def releases(ctx: typer.Context) -> None:
    """The app's releases, newest first."""
    obj = get(ctx)
    runner = obj.runner()
    state = runner.read_one(read_state(obj.config().app.name))
    if obj.json:
        obj.emit_json([{**vars(r), "name": r.name, "current": r.number == state.current}
                       for r in reversed(state.releases)])
        return
    columns = [Column("release", key=True), Column("outcome"), Column("kind"),
               Column("created", drop=1), Column("by", drop=2), Column("git", drop=3),
               Column("image", drop=4)]
    rows = []
    for r in reversed(state.releases):
        marker = " (current)" if r.number == state.current else ""
        kind = f"rollback to v{r.rollback_of}" if r.rollback_of else r.kind
        git = (r.git_commit or "-")[:10] + ("+dirty" if r.git_dirty else "")
        rows.append([f"{r.name}{marker}", r.outcome, kind, r.created_at, r.user, git,
                     r.image_id[:19] if r.image_id else "-"])
    obj.console.print(fitted(columns, rows, width=obj.console.width,
                             title=f"{obj.config().app.name} releases on {runner.host.label}"))


def status(ctx: typer.Context) -> None:
    """Per process: container, release, health, uptime and domains."""
    obj = get(ctx)
    runner = obj.runner()
    app = obj.config().app.name
    view = app_view(runner, obj.config())
    state, rows, env, accessories = view.state, view.rows, view.env, view.accessories
    certs = (tls.certificate_rows(runner, state.route.domains, state.route.tls)
             if state.route else [])
    tasks = []
    if obj.config().server.cluster:
        from dockyard.cluster import services as svc

        tasks = runner.read_one(svc.app_tasks(app))
        rows = [r for r in rows if r.process not in {t.process for t in tasks}]
    if obj.json:
        obj.emit_json({"app": app, "host": runner.host.label,
                       "current": f"v{state.current}" if state.current else None,
                       "env": env, "processes": [r.as_dict() for r in rows],
                       "tasks": [{"process": t.process, "release": f"v{t.release}",
                                  "task": t.task, "node": t.node, "state": t.state}
                                 for t in tasks],
                       "accessories": [a.as_dict() for a in accessories],
                       "domains": certs})
        return
    current = f"v{state.current}" if state.current else "none"
    obj.console.print(f"{app} on {runner.host.label}: current release {current}; env: {env}",
                      markup=False)
    width = obj.console.width
    obj.console.print(fitted(
        [Column("process", key=True), Column("container", key=True), Column("release"),
         Column("health"), Column("uptime", drop=1), Column("domains", whole=True)],
        [[r.process, r.container, r.release, r.health, r.uptime, "\n".join(r.domains)]
         for r in rows], width=width))
    if tasks:
        obj.console.print(fitted(
            [Column("process", key=True), Column("task", key=True), Column("release"),
             Column("node", key=True), Column("state")],
            [[t.process, t.task, f"v{t.release}", t.node, t.state] for t in tasks],
            width=width, title="tasks on the swarm"))
    if certs:
        obj.console.print(fitted(
            [Column("domain", key=True), Column("https"), Column("issuer", drop=2),
             Column("expires", drop=1), Column("last result", drop=3)],
            [[c["domain"], c["https"], c["issuer"], c["expires"], c["last"]] for c in certs],
            width=width))
    if accessories:
        obj.console.print(fitted(
            [Column("accessory", key=True), Column("type"), Column("container", key=True),
             Column("image", drop=2), Column("state"), Column("uptime", drop=1)],
            [[a.name, a.type, a.container, a.image, a.state, a.uptime] for a in accessories],
            width=width))


def _known_process(obj: AppContext, process: str) -> str:
    """The config alone says which processes exist: checked before connecting. A compose
    service's name stands for its process (the routed service for web)."""
    cfg = obj.config()
    if cfg.composition is not None:
        process = cfg.composition.process_of(process)
    if process != "web" and process not in cfg.processes:
        known = ", ".join(["web", *sorted(cfg.processes)])
        if cfg.composition is not None:
            known += " (or the compose file's service names)"
        raise DockyardError("DY057", f"{values.shown(process)} is not a process of "
                            f"{cfg.app.name}; its processes: {known}")
    return process


def _containers(obj: AppContext, process: str,
                states: tuple[str, ...] = ("running",)) -> list[ctr.Listed]:
    process = _known_process(obj, process)
    runner = obj.runner()
    app = obj.config().app.name
    everything = runner.read_one(ctr.list_app(app))
    listed = [c for c in everything if c.process == process and c.state in states]
    if not listed:
        known = sorted({c.process for c in everything if c.process and c.process != "release"})
        raise DockyardError("DY057", f"{app} has no running {process!r} process on "
                            f"{runner.host.label}; running processes: "
                            f"{', '.join(known) or 'none (deploy first)'}")
    return sorted(listed, key=lambda c: c.release, reverse=True)


def logs(
    ctx: typer.Context,
    process: Annotated[str, typer.Argument(metavar="PROCESS",
                                           help="web, or a name from [processes].")] = "web",
    follow: context.FollowOpt = False,
    lines: context.LinesOpt = 100,
) -> None:
    """Show a process's logs (the newest container of that process)."""
    obj = get(ctx)
    if obj.config().server.cluster:  # every task's lines, prefixed by task and node
        from dockyard.cluster import services as svc

        process = _known_process(obj, process)
        runner = obj.runner()
        found = [t for t in runner.read_one(svc.app_tasks(obj.config().app.name))
                 if t.process == process]
        if not found:
            raise DockyardError("DY057", f"no running {process!r} task on the swarm "
                                "(deploy first)")
        code = runner.host.interactive(svc.logs(found[0].service, tail=lines, follow=follow),
                                       tty=False)
        raise typer.Exit(code)
    listed = _containers(obj, process, ("running", "restarting"))  # restarting: it crashed
    container = listed[0]
    kills = obj.runner().read_one(ctr.memory_kills([c.name for c in listed]))
    for kill in kills.values():  # the logs end where the kernel killed it: say so
        obj.err.print(f"{kill.name} was {kill.describe()}")
    cmd = ctr.logs(container.name, tail=lines, follow=follow)
    code = obj.runner().host.interactive(list(cmd.argv), tty=False)
    raise typer.Exit(code)


def run(
    ctx: typer.Context,
    command: Annotated[list[str], typer.Argument(
        metavar="[PROCESS] -- CMD", help="The process whose image and settings it takes "
        "(default: web; a compose service's name works), then the command after --.")],
) -> None:
    """Run a one-off container of the current release (env and network included):
    dockyard run -- python manage.py shell"""
    obj = get(ctx)
    before, raw = context.passthrough(["run"], list(command))
    if len(before) > 1 or any(w.startswith("-") for w in before):
        raise DockyardError("DY005", "write: dockyard run [PROCESS] -- CMD...")
    process = _known_process(obj, before[0]) if before else "web"
    command = raw
    if not command:
        raise DockyardError("DY005", "no command given; write: dockyard run [PROCESS] -- CMD...")
    runner = obj.runner()
    cfg = obj.config()
    app = cfg.app.name
    state = runner.read_one(read_state(app))
    if state.current is None:
        raise DockyardError("DY055", f"{app} has no live release on {runner.host.label}; run: "
                            "dockyard deploy")
    release = state.release(state.current)
    image = release.image if release else f"dockyard/{app}:v{state.current}"
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    spec = ctr.ContainerSpec(app, "run", state.current, image, app,
                             ctr.container_name(app, "run", state.current),
                             flows.env_file_path(app, state.current), list(command))
    if cfg.composition is not None:  # a compose service's own image, volumes, entrypoint
        extras = cfg.composition.extras.get(process)
        spec = with_extras(cfg, dataclasses.replace(spec, process=process))
        spec = dataclasses.replace(spec, process="run", command=extras.command(list(command))
                                   if extras else list(command))
    code = runner.interactive(ctr.run_interactive(spec, tty=tty), tty=tty)
    raise typer.Exit(code)


def exec_(
    ctx: typer.Context,
    args: Annotated[list[str], typer.Argument(
        metavar="[PROCESS] -- CMD",
        help="The process (default: web), then the command after --.")],
) -> None:
    """Run a command inside a running container: dockyard exec [PROCESS] -- CMD..."""
    obj = get(ctx)
    before, raw = context.passthrough(["exec"], list(args))
    process = "web"
    unknown = [w for w in before if w.startswith("-")]
    if unknown:
        raise DockyardError("DY005", f"no such option: {values.shown(unknown[0])}; write: "
                            "dockyard exec [PROCESS] -- CMD...")
    if len(before) > 1:
        raise DockyardError("DY005", "write: dockyard exec [PROCESS] -- CMD...")
    if before:
        process = before[0]
    if not raw:
        raise DockyardError("DY005", "no command given; write: dockyard exec [PROCESS] -- CMD...")
    runner = obj.runner()
    if obj.config().server.cluster:  # the first node (hosts order) that runs such a task
        process = _known_process(obj, process)
        for candidate in [runner, *runner.peers]:
            here = [c for c in candidate.read_one(ctr.list_app(obj.config().app.name))
                    if c.process == process and c.running]
            if here:
                runner, container = candidate, max(here, key=lambda c: c.release)
                break
        else:
            raise DockyardError("DY057", f"no running {process!r} task on any node")
    else:
        container = _containers(obj, process)[0]
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    code = runner.interactive(ctr.exec_in(container.name, raw, tty=tty), tty=tty)
    raise typer.Exit(code)


def remove(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
    = False,
    volumes: Annotated[bool, typer.Option("--volumes", help="Also delete the app's volumes "
                                          "(accessory data).")] = False,
    backups: Annotated[bool, typer.Option("--backups", help="Also delete the app's backups "
                                          "(/var/lib/dockyard/backups/APP).")] = False,
    certificates: Annotated[bool, typer.Option(
        "--certificates", help="Also delete the certificates of the app's names.")] = False,
) -> None:
    """Remove the app from the server: containers, router entries, images, network, env.

    Volumes, backups and certificates stay unless an option says otherwise; the end of the
    output says what stayed and the option that deletes it. Run it again with an option to
    delete what an earlier remove kept."""
    obj = get(ctx)
    obj.need_confirmation(yes, "remove")
    runner = obj.runner()
    app = obj.config().app.name

    def confirm(gone: list[str]) -> None:
        if obj.dry_run or yes:
            return
        obj.err.print(f"on {runner.host.label}, this deletes for good:")
        for line in gone:
            obj.err.print(f"  - {line}")
        obj.confirm(f"remove {app}?", yes)

    removed = remove_app(runner, obj.config(), _progress(obj), volumes_too=volumes,
                         backups_too=backups, certificates_too=certificates, confirm=confirm)
    if obj.json:
        obj.emit_json({"app": app, "removed": removed.done, "kept": removed.kept})
    elif not runner.dry_run:
        for line in removed.done:
            obj.say(f"{app}: {line}")
        for line in removed.kept:
            obj.say(f"{app}: kept {line}")


lock_app = context.group("The app's deploy lock on the server.")


@lock_app.command("status")
def lock_status(ctx: typer.Context) -> None:
    """Who holds the app's lock, and since when."""
    obj = get(ctx)
    runner = obj.runner()
    app = obj.config().app.name
    held, holder = runner.read_one(locks.status(app))
    if obj.json:
        obj.emit_json({"app": app, "held": held, "holder": vars(holder) if holder else None})
    elif holder:
        obj.console.print(f"{app} is locked by {holder.describe()} (pid {holder.pid})",
                          markup=False)
    else:
        obj.console.print(f"{app} is not locked", markup=False)


@lock_app.command("release")
def lock_release(ctx: typer.Context) -> None:
    """End a stuck lock holder (a deploy whose connection hangs)."""
    obj = get(ctx)
    runner = obj.runner()
    app = obj.config().app.name
    _, holder = runner.read_one(locks.status(app))
    if holder is None:
        obj.say(f"{app} is not locked")
        return
    runner.change(locks.force_release(holder.pid), check=False)
    obj.say(f"released the lock held by {holder.describe()}")


def history(
    ctx: typer.Context,
    count: Annotated[int, typer.Option("--lines", "-n", min=1, max=100_000,
                                       help="How many entries to show.")] = 20,
    everything: Annotated[bool, typer.Option("--all", help="Every app on the server, not "
                                             "only this one.")] = False,
) -> None:
    """The server's audit log as a timeline: who ran what, when, what it changed, how long
    it took, and how it ended (the log itself: /var/lib/dockyard/audit.log).

    "took" is the command's own duration, the number its summary said, for deploy,
    rollback, restart and env changes; for other commands, the time their changes took."""
    obj = get(ctx)
    runner = obj.runner()
    app = obj.config().app.name
    entries = runner.read_one(audit.read(max(200, count * 60)))
    if not everything:
        entries = [e for e in entries if e.app in (app, "") and (e.app or app in " ".join(
            e.commands))]
    entries = entries[-count:]
    if obj.json:
        obj.emit_json([e.as_dict() for e in entries])
        return
    columns = [Column("time (UTC)", key=True), Column("who", drop=2), Column("command"),
               Column("app", drop=1), Column("steps", drop=3), Column("took", key=True),
               Column("outcome")]
    rows = [[e.time.replace("T", " ").rstrip("Z"), e.user, e.subcommand or "?", e.app or "-",
             str(len(e.commands)), flows.seconds(e.took_s), e.outcome] for e in entries]
    obj.console.print(fitted(columns, rows, width=obj.console.width,
                             title=f"history on {runner.host.label}" + ("" if everything else
                                                                        f" ({app})")))
    if obj.verbose:
        for e in entries:
            obj.console.print(f"\n{e.time} {e.user} {e.subcommand}:", markup=False)
            for command, code in zip(e.commands, e.exits, strict=True):
                mark = "" if code == 0 else f"  [exit {code}]"
                obj.console.print(f"  {command}{mark}", markup=False, soft_wrap=True)
