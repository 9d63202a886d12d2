"""Accessory orchestration: boot, upgrade, remove, backup, restore, and the backup scheduler.

Each flow reads the server once (the same snapshot a deploy reads), then runs builders'
commands through the runner, so ``--dry-run`` shows every step and the audit log records
them. Data is never deleted unless asked: volumes outlive containers, a restore and an
upgrade take a backup first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from dockyard.config.model import Config
from dockyard.deploy.progress import Progress
from dockyard.docker import containers as ctr
from dockyard.docker import engine, networks
from dockyard.errors import CommandFailed, DockyardError
from dockyard.host.command import Command, Wait
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.server.setup import state_dir_commands
from dockyard.state import env as env_state
from dockyard.state import paths, snapshot
from dockyard.state import proxy as proxy_state
from dockyard.state.files import write_files
from dockyard.values import printable

if TYPE_CHECKING:
    from dockyard.deploy.target import Target

from . import backups, cron
from . import commands as cmds
from .spec import Accessory, resolve, resolve_all

LOG_TAIL = 30


@dataclass
class Site:
    """What accessory commands need to know about the server, read in one round trip."""

    runner: Runner
    config: Config
    base_dir: Path
    progress: Progress
    snap: snapshot.Snapshot = field(default_factory=snapshot.Snapshot)
    tools_image: str = ""

    @property
    def app(self) -> str:
        return self.config.app.name

    def accessory(self, name: str) -> Accessory:
        return resolve(self.config, name, self.base_dir)

    def all(self) -> list[Accessory]:
        return resolve_all(self.config, self.base_dir)

    def running(self, acc: Accessory) -> cmds.Running | None:
        return self.snap.accessories.get(acc.name)


def _site(runner: Runner, config: Config, base_dir: Path, progress: Progress,
          names: list[str], values: list[object]) -> Site:
    snap = snapshot.assemble(names, values)
    runner.add_secrets(env_state.redactable(snap.env))
    runner.scripts_ready = snap.scripts
    return Site(runner, config, base_dir, progress, snap,
                proxy_state.effective(config, snap.proxy).tools_image)


def read_site(runner: Runner, config: Config, base_dir: Path, progress: Progress) -> Site:
    """The server as it is, without the lock (listings, logs, exec)."""
    names = snapshot.facts(config.app.name, config)
    return _site(runner, config, base_dir, progress, list(names),
                 runner.read(*names.values()))


@contextmanager
def session(runner: Runner, config: Config, base_dir: Path, progress: Progress,
            what: str) -> Iterator[Site]:
    """Accessory changes take the app's lock, like deploys; the server is read under it in
    the same round trip."""
    names = snapshot.facts(config.app.name, config)
    with runner.lock(config.app.name, what, read=list(names.values())) as values:
        yield _site(runner, config, base_dir, progress, list(names), values)
        runner.flush_audit()


def from_target(t: Target, base_dir: Path) -> Site:
    """For deploy, which has read the server already."""
    return Site(t.runner, t.config, base_dir, t.progress, t.snap, t.settings.tools_image)


# -- boot, start, upgrade, remove ----------------------------------------------------------

def boot(site: Site, acc: Accessory) -> None:
    """Create what the accessory needs and start it (one round trip); wait until it
    answers."""
    runner = site.runner
    changes: list[Command] = []
    if not site.snap.state_dir:
        changes += state_dir_commands(site.snap.who)
        site.snap.state_dir = True
    if acc.network not in site.snap.networks:
        changes.append(networks.create(acc.network, app=site.app))
        site.snap.networks.add(acc.network)
    env = acc.env(site.snap.env)
    digest = acc.config_hash(site.snap.env)
    with site.progress.step(f"boot {acc.name} ({acc.kind}, {acc.image})", f"boot {acc.name}"):
        changes.append(write_files(
            paths.app_dir(site.app), {f"accessories/{acc.name}.env":
                                      env_state.format_env(env).encode()},
            f"write {acc.name}'s environment (its env and the secrets it lists), readable "
            "only by you", label=f"<{acc.name} env file, {len(env)} keys>"))
        runner.change_all(changes)
        changes = []
        uploads = acc.read_uploads()
        if uploads:
            changes.append(write_files(acc.files_dir, uploads,
                                       f"upload {acc.name}'s files (mounted read-only)",
                                       mode=0o644))
        if not runner.read_one(snapshot.image_present(acc.image)):
            changes.append(engine.pull(acc.image))
        changes += cmds.create_volumes(acc)
        changes.append(cmds.run(acc, digest))
        runner.change_all(changes)
    wait_ready(site, acc)


def wait_ready(site: Site, acc: Accessory) -> None:
    runner = site.runner

    def ready() -> bool | None:
        result = runner.query(cmds.wait_ready(acc), check=False)
        if result.ok:
            return True
        raise DockyardError(
            "DY061", f"{acc.name} did not become ready on {runner.host.label} "
            f"({result.err.strip() or 'no answer'}); its last log lines follow",
            _logs(site, acc))

    def expired() -> NoReturn:
        raise DockyardError("DY061", f"{acc.name} did not become ready on "
                            f"{runner.host.label}", _logs(site, acc))

    with site.progress.step(f"wait until {acc.name} is ready", f"ready {acc.name}"):
        runner.wait(Wait(f"{acc.name} answers (at most {cmds.READY_TIMEOUT}s)", ready,
                         cmds.READY_TIMEOUT + 10, expired, planned=True,
                         why=f"the app's release command and processes need {acc.name}; "
                         "if it never answers, the command stops and prints its last log "
                         "lines"))


def ensure_for_deploy(site: Site) -> None:
    """Deploys boot missing accessories and wait for them; running ones are not touched
    (a changed setting is pointed out, applied only by ``accessory upgrade``). With a
    compose file, the file is the whole truth: a stateful service it no longer has loses
    its container, never its volumes."""
    composition = site.config.composition
    source = composition.file_name if composition is not None else "dockyard.toml"
    for acc in site.all():
        found = site.running(acc)
        if found is None:
            boot(site, acc)
            continue
        if found.config_hash != acc.config_hash(site.snap.env):
            site.progress.warn(f"{acc.name}'s settings in {source} differ from the running "
                               f"container; apply them with: dockyard accessory upgrade "
                               f"{acc.name}")
        if not found.running:
            site.progress.warn(f"{acc.name} is {found.state}, not running; start it with: "
                               f"dockyard accessory start {acc.name}")
    if composition is not None:
        for name in sorted(set(site.snap.accessories) - set(site.config.accessories)):
            _remove_gone(site, name, source)
    update_schedule(site)


def _remove_gone(site: Site, name: str, source: str) -> None:
    """A stateful service gone from the compose file: its container goes, its volumes stay
    (named in the warning, with the command that deletes them)."""
    found = site.snap.accessories[name]
    with site.progress.step(f"remove {name} (no longer in {source})", f"remove {name}"):
        site.runner.change_all([cmds.remove_container(found.container, name)])
        kept = site.runner.read_one(cmds.volumes_of(site.app, name))
    if kept:
        site.progress.warn(f"{name}: no longer in {source}; its container is removed, its "
                           f"volumes are kept: {', '.join(kept)} (delete them with: docker "
                           f"volume rm {' '.join(kept)})")
    else:
        site.progress.warn(f"{name}: no longer in {source}; its container is removed (it had "
                           "no named volume)")


def update_schedule(site: Site, *, without: str | None = None) -> None:
    """The scheduler (backups and [cron] jobs) matches the config: (re)created when a
    schedule changed, removed when nothing is scheduled."""
    runner = site.runner
    accs = [a for a in site.all() if a.name != without]
    jobs = site.config.cron
    current = site.snap.cron
    if not cron.wanted(accs, jobs):
        if current is not None:
            runner.change(cron.remove(site.app))
            site.snap.cron = None
        return
    digest = cron.config_hash(site.app, accs, site.tools_image, jobs)
    if current is not None and current == (digest, "running"):
        return
    ensure_tools(site)
    changes: list[Command] = []
    able = runner.probe(f"{site.tools_image} has crond, a docker client, tar and wget",
                        lambda: runner.read_one(cron.tools_check(site.tools_image)),
                        planned=True, why="scheduled backups and jobs need them")
    if not able:
        raise DockyardError(
            "DY069", f"[proxy] tools_image {site.tools_image} lacks crond, a docker client, "
            "tar or wget, which scheduled backups and jobs need; set tools_image = "
            "\"docker:27-cli\" (or an image with all of them) and run: dockyard router apply")
    changes.append(cron.write(site.app, accs, site.tools_image, jobs))
    if current is not None:
        changes.append(cron.remove(site.app))
    changes.append(cron.run(site.app, site.tools_image, digest))
    runner.change_all(changes)
    site.snap.cron = (digest, "running")


def ensure_tools(site: Site) -> None:
    """The tools image (volume backups, the backup scheduler) is on the server."""
    if not site.snap.images.get(site.tools_image) and not site.runner.read_one(
            snapshot.image_present(site.tools_image)):
        site.runner.change(engine.pull(site.tools_image))
    site.snap.images[site.tools_image] = True


def require(site: Site, acc: Accessory, *, running: bool = False) -> cmds.Running:
    found = site.running(acc)
    if found is None:
        raise DockyardError("DY060", f"{acc.name} is not booted on {site.runner.host.label}; "
                            f"run: dockyard accessory boot {acc.name}")
    if running and not found.running:
        raise DockyardError("DY061", f"{acc.name} is {found.state}, not running; run: "
                            f"dockyard accessory start {acc.name}")
    return found


def upgrade(site: Site, acc: Accessory) -> str | None:
    """New image (and any changed setting), same data; a backup first. Returns its id."""
    runner = site.runner
    found = require(site, acc)
    if acc.kind == "postgres":
        check_postgres_upgrade(site, acc, found)
    taken = None
    if found.running:
        taken = take_backup(site, acc, "pre-upgrade").id
    runner.change(cmds.remove(acc))
    site.snap.accessories.pop(acc.name, None)
    boot(site, acc)
    update_schedule(site)
    return taken


def remove(site: Site, acc: Accessory, *, volumes: bool) -> None:
    runner = site.runner
    changes = [cmds.remove(acc)] if site.running(acc) is not None else []
    if volumes:
        cmd = cmds.remove_volumes(acc)
        if cmd is not None:
            changes.append(cmd)
    runner.change_all(changes)
    update_schedule(site, without=acc.name)


# -- PostgreSQL major versions --------------------------------------------------------------

def major_of(version_text: str) -> int | None:
    """15 from "15", "postgres (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)", "9.6"->9."""
    m = re.search(r"(?:PostgreSQL\)\s*)?(\d+)(?:\.\d+)*", version_text)
    return int(m.group(1)) if m else None


def tag_major(image: str) -> int | None:
    """16 from postgres:16, postgres:16.2-alpine, ghcr.io/x/postgres:16-bookworm."""
    name = image.split("@")[0].rsplit("/", 1)[-1]
    if ":" not in name:
        return None
    m = re.match(r"(\d+)", name.split(":", 1)[1])
    return int(m.group(1)) if m else None


def refuse_major_change(name: str, data_major: int | None, new_major: int | None,
                        old_image: str, new_image: str) -> None:
    """PostgreSQL cannot open a data directory of another major version: refuse, and say
    what works instead."""
    if data_major is None or new_major is None or data_major == new_major:
        return
    raise DockyardError(
        "DY063", f"{name} holds PostgreSQL {data_major} data and {new_image} runs PostgreSQL "
        f"{new_major}, which cannot open it; nothing was changed (it keeps running "
        f"{old_image})",
        [f"  a major upgrade needs a dump and restore: dockyard backup {name}; add a new "
         f"accessory with image {new_image!r} and an empty volume; dockyard accessory boot "
         "NEW; dockyard restore NEW ID --from-file <the dump> (or use pg_upgrade by hand)"])


def check_postgres_upgrade(site: Site, acc: Accessory, found: cmds.Running) -> None:
    runner = site.runner
    refuse_major_change(acc.name, tag_major(found.image), tag_major(acc.image), found.image,
                        acc.image)
    if not found.running:
        return

    def versions() -> tuple[str, str]:
        data = runner.read_one(cmds.data_major(acc))
        if not runner.read_one(snapshot.image_present(acc.image)):
            runner.change(engine.pull(acc.image))
        return data, runner.read_one(cmds.image_major(acc.image))

    data, new = runner.probe(f"the PostgreSQL version of {acc.name}'s data and of {acc.image}",
                             versions, planned=("", ""),
                             why="PostgreSQL cannot open data of another major version")
    refuse_major_change(acc.name, major_of(data) if data else None,
                        major_of(new) if new else None, found.image, acc.image)


# -- backups ------------------------------------------------------------------------------

def take_backup(site: Site, acc: Accessory, why: str = "manual") -> backups.Backup:
    runner = site.runner
    require(site, acc, running=acc.kind != "volume")
    if acc.kind == "volume":
        ensure_tools(site)
    with site.progress.step(f"back up {acc.name} ({why})", f"backup {acc.name}"):
        if acc.kind == "volume":
            site.progress.warn(f"{acc.name} is stopped while its volumes are copied")
        try:
            result = runner.change(backups.take(acc, why, site.tools_image))
        except CommandFailed as exc:
            raise DockyardError("DY064", f"backing up {acc.name} failed on "
                                f"{runner.host.label} (exit {exc.returncode}); nothing was "
                                "kept", exc.details) from None
    lines = result.out.strip().split("\n")
    found = backups.parse_line(lines[-1]) if lines else None
    if found is None:
        raise DockyardError("DY064", f"backing up {acc.name} gave no result line")
    return found


def list_backups(site: Site, acc: Accessory) -> list[backups.Backup]:
    return site.runner.read_one(backups.listing(acc))


def find_backup(site: Site, acc: Accessory, wanted: str) -> backups.Backup:
    found = list_backups(site, acc)
    for b in found:
        if wanted in (b.id, b.file):
            return b
    ids = ", ".join(b.id for b in found[-5:]) or "none"
    raise DockyardError("DY065", f"{acc.name} has no backup {wanted!r} on "
                        f"{site.runner.host.label}; the newest: {ids} (see: dockyard backups "
                        f"{acc.name})")


def download(site: Site, acc: Accessory, backup: backups.Backup, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    dest = directory / backup.file
    partial = dest.with_name(dest.name + ".partial")
    result = site.runner.download(backups.download(acc, backup), str(partial))
    if result.planned:
        return dest
    if not result.ok:
        partial.unlink(missing_ok=True)
        raise DockyardError("DY064", f"copying {backup.file} failed: {result.err.strip()}")
    local = backups.sha256_file(partial)
    if local != backup.sha256:
        partial.unlink(missing_ok=True)
        raise DockyardError("DY067", f"{backup.file}: the copy's SHA-256 is {local}, the "
                            f"server recorded {backup.sha256}; the copy was deleted")
    partial.replace(dest)
    return dest


def check_upload(acc: Accessory, local: Path) -> None:
    """A dump from this machine must exist and fit the accessory: checked before
    connecting, by its first bytes."""
    name = printable(str(local))
    try:
        with local.open("rb") as fh:
            head = fh.read(512)
    except FileNotFoundError:
        raise DockyardError("DY005", f"--from-file: {name} does not exist") from None
    except OSError as exc:
        raise DockyardError("DY005", f"--from-file: {name} cannot be read "
                            f"({exc.strerror or exc})") from None
    kind = backups.detect_kind(head)
    if kind != acc.kind:
        what = {"postgres": "a PostgreSQL custom-format dump (pg_dump -Fc)",
                "redis": "a Redis RDB file", "volume": "a tar archive of the volumes",
                None: "not a file Dockyard can restore"}
        raise DockyardError("DY068", f"{name} is {what[kind]}, but {acc.name} is a {acc.kind} "
                            f"accessory, which restores from {what[acc.kind]}")


def upload(site: Site, acc: Accessory, local: Path) -> backups.Backup:
    """Put a dump from this machine next to the server's backups (id ``<time>-upload``)."""
    check_upload(acc, local)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    file = f"{stamp}-upload.{backups.EXTENSIONS[acc.kind]}"
    digest = backups.sha256_file(local)
    result = site.runner.change(backups.upload(acc, local, file))
    found = backups.parse_line(result.out.strip().split("\n")[-1])
    if result.planned:
        return backups.Backup(f"{stamp}-upload", file, "", "upload", local.stat().st_size,
                              digest)
    if found is None or found.sha256 != digest:
        raise DockyardError("DY067", f"{local}: the server's copy has SHA-256 "
                            f"{found.sha256 if found else '?'}, this file {digest}")
    return found


def restore(site: Site, acc: Accessory, backup: backups.Backup) -> str:
    """Safety backup, app in maintenance, restore, ready, app back. Returns the safety id."""
    runner = site.runner
    require(site, acc, running=acc.kind != "volume")
    safety = take_backup(site, acc, "pre-restore")
    with maintenance(site):
        with site.progress.step(f"restore {acc.name} from {backup.id}", f"restore {acc.name}"):
            if acc.kind == "volume":
                ensure_tools(site)
            try:
                runner.change(backups.restore(acc, backup, site.tools_image))
            except CommandFailed as exc:
                raise DockyardError(
                    "DY066", f"restoring {acc.name} from {backup.id} failed (exit "
                    f"{exc.returncode}); the safety backup {safety.id} holds what was there: "
                    f"dockyard restore {acc.name} {safety.id}", exc.details) from None
        wait_ready(site, acc)
    return safety.id


@contextmanager
def maintenance(site: Site) -> Iterator[None]:
    """The app's web answers 503 with a short page while the block runs (when it is
    routed); brought back whatever happens."""
    runner = site.runner
    route = site.snap.app.route
    if route is None or not site.snap.router.running:
        yield
        return
    runner.api(api.maintenance(route.backend, on=True))
    site.progress.note(f"{site.app} answers 503 (maintenance) until the restore is done")
    try:
        yield
    finally:
        runner.api(api.maintenance(route.backend, on=False), check=False)
        runner.flush_audit()


def _logs(site: Site, acc: Accessory) -> list[str]:
    lines = site.runner.read_one(ctr.logs_fact(acc.container, LOG_TAIL))
    return [f"  | {site.runner.redact(line)}" for line in lines[-LOG_TAIL:]] or [
        "  (no log output)"]
