"""`dockyard cron list|run|logs`: the app's scheduled jobs ([cron.NAME]) on the server."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from typing import Annotated

import typer

from dockyard.cli.context import AppContext, get, group
from dockyard.cli.tables import Column, fitted
from dockyard.config.model import CronJobConfig
from dockyard.errors import DockyardError
from dockyard.jobs import runs as job_runs
from dockyard.jobs.schedule import next_run

app = group("Scheduled jobs ([cron.NAME] in dockyard.toml), run on the server by its cron "
            "container, with or without this machine.")

JobArg = Annotated[str, typer.Argument(metavar="NAME", help="A job: a [cron.NAME] table.")]


def _job(obj: AppContext, name: str) -> CronJobConfig:
    jobs = obj.config().cron
    if name not in jobs:
        known = ", ".join(sorted(jobs)) or "none: add a [cron.NAME] table"
        raise DockyardError("DY057", f"no scheduled job {name!r} in {obj.config_path.name}; "
                            f"jobs: {known}")
    return jobs[name]


def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _when(stamp: str) -> str:
    """20261202T121000Z -> 2026-12-02 12:10:00Z."""
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").strftime("%Y-%m-%d %H:%M:%SZ")
    except ValueError:
        return stamp


@app.command("list")
def list_jobs(ctx: typer.Context) -> None:
    """Every job: schedule, last run and its result, next run."""
    obj = get(ctx)
    cfg = obj.config()
    runner = obj.runner()
    seen = runner.read_one(job_runs.read(cfg.app.name, sorted(cfg.cron)))
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    table: list[list[str]] = []
    for name, job in sorted(cfg.cron.items()):
        zone_name = job.timezone or seen.timezone or "UTC"
        zone = _zone(zone_name) or UTC
        upcoming = next_run(job.schedule, now.astimezone(zone))
        kept = seen.runs.get(name, [])
        last = kept[-1] if kept else None
        running = name in seen.running
        rows.append({
            "name": name, "schedule": job.schedule, "timezone": zone_name,
            "command": job.command, "running": running,
            "last_run": last.as_dict() if last else None,
            "runs": [r.as_dict() for r in kept],
            "next_run": upcoming.isoformat() if upcoming else None,
        })
        result = "-" if last is None else f"{last.result} in {last.seconds}s, {last.release}"
        table.append([name, job.schedule, _when(last.started) if last else "never",
                      "running now" if running else result,
                      upcoming.strftime("%Y-%m-%d %H:%M") if upcoming else "never", zone_name])
    if obj.json:
        obj.emit_json({"app": cfg.app.name, "host": runner.host.label, "jobs": rows})
        return
    if not rows:
        obj.console.print(f"{cfg.app.name} has no scheduled jobs; add a [cron.NAME] table "
                          "with schedule and command")
        return
    obj.console.print(fitted(
        [Column("job", key=True), Column("schedule", key=True), Column("last run"),
         Column("result"), Column("next run"), Column("time zone", drop=1)],
        table, width=obj.console.width, title=f"scheduled jobs of {cfg.app.name}"))


@app.command("run")
def run_job(ctx: typer.Context, name: JobArg) -> None:
    """Run a job now on the server, as its schedule would (the live release, never twice at
    once); its output streams here and is kept with the others."""
    obj = get(ctx)
    job = _job(obj, name)
    cfg = obj.config()
    runner = obj.runner()
    argv = job_runs.run_now(cfg.app.name, name, job.timeout, job.keep)
    if obj.dry_run:
        obj.say(f"would run on {runner.host.label}: {job_runs.shown(argv)}")
        return
    code = runner.host.interactive(argv, tty=False)
    if code == 75:
        raise DockyardError("DY058", f"{name} is running already (a run from its schedule); "
                            f"see: dockyard cron list")
    if code == 127 or code == 2:
        raise DockyardError("DY058", f"{name} could not start on {runner.host.label}: "
                            "the cron container's scripts are missing; run: dockyard deploy")
    raise typer.Exit(code)


@app.command("logs")
def logs(
    ctx: typer.Context,
    name: JobArg,
    runs: Annotated[int, typer.Option("--runs", "-n", min=1, max=1000,
                                      help="How many of the last runs to show.")] = 1,
) -> None:
    """The output of a job's last run(s), each under a line with its start time (UTC)."""
    obj = get(ctx)
    _job(obj, name)
    runner = obj.runner()
    code = runner.host.interactive(job_runs.last_log(obj.config().app.name, name, runs),
                                   tty=False)
    raise typer.Exit(code)
