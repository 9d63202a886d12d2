"""deploy, rollback and restart: the orchestration. Each composes the same pieces: take the
app's lock, prepare the server, make a release (build or reuse an image), run the release
command, and roll it out with the zero-downtime switch."""

from __future__ import annotations

import getpass
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dockyard.accessories import flows as accessories
from dockyard.config.model import Config
from dockyard.docker import containers as ctr
from dockyard.docker.images import ensure_image
from dockyard.errors import CommandFailed, DockyardError
from dockyard.host.command import change, query
from dockyard.host.runner import Runner
from dockyard.server.setup import ensure_state_dir
from dockyard.state import env as env_state
from dockyard.state import paths
from dockyard.state.files import write_files
from dockyard.state.lock import Lock
from dockyard.state.releases import Release

from . import build as builder
from . import tls
from .progress import Progress
from .rollout import Outcome, roll_out
from .target import Target, prepare


@dataclass
class Result:
    release: Release
    outcome: Outcome | None
    seconds: float
    timings: dict[str, float]

    def summary(self, app: str, domains: list[str]) -> str:
        where = f" on {', '.join(domains)}" if domains else ""
        return f"{app} {self.release.name} is live{where} in {self.seconds:.1f} s"


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def config_hash(config: Config) -> str:
    data = json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def load_env(t: Target) -> tuple[dict[str, str], dict[str, str]]:
    """(merged, server): the server's values (secrets) over dockyard.toml's [env]. Every
    value is registered for redaction before anything else can print it."""
    if t.env_cache is not None:
        return t.env_cache
    raw = t.runner.query(env_state.read_command(t.app), check=False)
    server = env_state.parse_env_file(raw.out) if raw.ok else {}
    t.runner.add_secrets(env_state.redactable(server))
    return {**t.config.env, **server}, server


def env_hash(merged: dict[str, str]) -> str:
    return hashlib.sha256(env_state.format_env(merged).encode()).hexdigest()[:16]


def env_file_path(app: str, release: int) -> str:
    """Each release's environment, as Docker's --env-file reads it (mode 0600)."""
    return f"{paths.app_dir(app)}/env/v{release}.env"


def env_path(t: Target, release: int) -> str:
    return env_file_path(t.app, release)


#: What a failed step means for a deploy-like command (dockyard explain prints it).
FAILS = ("the command stops here; the release that serves now keeps serving, and a new "
         "container that got no traffic yet is removed (running it again repairs the rest)")


def deploy(runner: Runner, config: Config, config_dir: Path, progress: Progress) -> Result:
    if config.build.image is None:  # before connecting: the laptop alone can say
        builder.check_context((config_dir / config.build.context), config.build.dockerfile)
    runner.on_failure = FAILS
    t = Target(runner, config, progress)
    with Lock(runner.host, t.app, "deploy", dry_run=runner.dry_run):
        with progress.step("prepare the server", "prepare"):
            prepare(t)
        if config.accessories or t.snap.cron is not None:
            site = accessories.from_snapshot(runner, config, config_dir, progress, t.snap,
                                             t.settings.tools_image)
            accessories.ensure_for_deploy(site)
        number = t.state.next_number
        git = builder.git_info(config_dir)
        release = Release(
            number=number, image=builder.image_tag(t.app, number), kind="deploy",
            git_commit=git.commit, git_dirty=git.dirty, config_hash=config_hash(config),
            created_at=now_iso(), user=getpass.getuser(),
        )
        return _release_and_roll_out(t, release, config_dir=config_dir, build=True)


def rollback(runner: Runner, config: Config, progress: Progress, to: int | None) -> Result:
    runner.on_failure = FAILS
    t = Target(runner, config, progress)
    with Lock(runner.host, t.app, "rollback", dry_run=runner.dry_run):
        with progress.step("prepare the server", "prepare"):
            prepare(t, create=False)
        state = t.state
        target = state.release(to) if to is not None else state.previous()
        if target is None or target.outcome not in ("live", "superseded"):
            known = ", ".join(r.name for r in state.releases
                              if r.outcome in ("live", "superseded")) or "none"
            what = f"v{to}" if to is not None else "a previous release"
            raise DockyardError("DY054", f"{t.app} has no {what} to roll back to; releases that "
                                f"were live: {known} (see: dockyard releases)")
        if not runner.query(query(["docker", "image", "inspect", "--format={{.Id}}", "--",
                                   target.image], "is its image still here?"), check=False).ok:
            raise DockyardError("DY054", f"the image of {target.name} ({target.image}) is no "
                                "longer on the server (pruned: keep_releases); deploy instead")
        number = state.next_number
        release = Release(
            number=number, image=builder.image_tag(t.app, number), kind="rollback",
            rollback_of=target.number, image_id=target.image_id, git_commit=target.git_commit,
            git_dirty=target.git_dirty, config_hash=target.config_hash, created_at=now_iso(),
            user=getpass.getuser(),
        )
        release.env_hash = target.env_hash
        return _release_and_roll_out(t, release, source=target, restore_env_of=target)


def env_release(runner: Runner, config: Config, progress: Progress,
                change_env: Callable[[dict[str, str]], dict[str, str]], *, restart: bool,
                ) -> tuple[Result | None, dict[str, str]]:
    """Change the server's environment (under the app's lock); when the app runs and
    ``restart``, make a release of the same image with it, switched with zero downtime."""
    runner.on_failure = FAILS
    t = Target(runner, config, progress)
    with Lock(runner.host, t.app, "env", dry_run=runner.dry_run):
        ensure_state_dir(runner)
        _, server = load_env(t)
        new_server = change_env(dict(server))
        runner.add_secrets(env_state.redactable(new_server))
        runner.change(env_state.write_command(t.app, new_server))
        t.reload_state()
        current = t.state.release(t.state.current) if t.state.current else None
        if current is None or not restart or new_server == server:
            runner.flush_audit()
            return None, new_server
        with progress.step("prepare the server", "prepare"):
            prepare(t, create=False)
        number = t.state.next_number
        release = Release(
            number=number, image=builder.image_tag(t.app, number), kind="env",
            image_id=current.image_id, git_commit=current.git_commit,
            git_dirty=current.git_dirty, config_hash=config_hash(config),
            created_at=now_iso(), user=getpass.getuser(),
            extra={"changed": sorted(set(new_server) ^ set(server)
                                     | {k for k in new_server if server.get(k) != new_server[k]})},
        )
        merged = {**config.env, **new_server}
        result = _release_and_roll_out(t, release, source=current, env=(merged, new_server))
        return result, new_server


def restart(runner: Runner, config: Config, progress: Progress) -> Result:
    """New containers of the current release, switched like a deploy; no new release."""
    runner.on_failure = FAILS
    t = Target(runner, config, progress)
    started = time.monotonic()
    with Lock(runner.host, t.app, "restart", dry_run=runner.dry_run):
        with progress.step("prepare the server", "prepare"):
            prepare(t, create=False)
        current = t.state.release(t.state.current) if t.state.current else None
        if current is None:
            raise DockyardError("DY055", f"{t.app} has no live release to restart; run: "
                                "dockyard deploy")
        outcome = roll_out(t, current, env_path(t, current.number))
        _https(t)
        _finish(t)
        return Result(current, outcome, time.monotonic() - started, progress.timings)


def _release_and_roll_out(t: Target, release: Release, *, config_dir: Path | None = None,
                          build: bool = False, source: Release | None = None,
                          env: tuple[dict[str, str], dict[str, str]] | None = None,
                          restore_env_of: Release | None = None) -> Result:
    """``source``: reuse that release's image (rollback, env change). ``env``: (merged,
    server) for the snapshot; ``restore_env_of``: copy that release's snapshot instead
    (rollback), and make it the server's environment again once live, as Heroku does."""
    runner, config, progress = t.runner, t.config, t.progress
    started = time.monotonic()
    env_file = env_path(t, release.number)
    files = {f"releases/v{release.number}.json": b""}
    if restore_env_of is None:
        merged, server = env if env is not None else load_env(t)
        release.env_hash = env_hash(merged)
        files[f"env/v{release.number}.env"] = env_state.format_env(merged).encode()
        files[f"env/v{release.number}.server"] = env_state.format_env(server).encode()
    files[f"releases/v{release.number}.json"] = release.to_json()
    runner.change(write_files(t.app_dir, files, f"record {release.name} (pending) and its "
                              "environment, readable only by you", mode=0o600,
                              label=f"<{release.name} record and env snapshot>"))
    try:
        if restore_env_of is not None:
            old = restore_env_of.number
            runner.change(change(
                ["sh", "-c", 'cp -p "$1.env" "$3.env" && { cp -p "$1.server" "$3.server" '
                 '2>/dev/null || : > "$3.server"; }', "dockyard-env", f"{t.app_dir}/env/v{old}",
                 "", f"{t.app_dir}/env/v{release.number}"],
                f"{release.name} gets the environment {restore_env_of.name} had"))
        if source is not None:
            with progress.step(f"reuse the image of {source.name}", "build"):
                runner.change(builder.tag(source.image, release.image))
        elif build and config.build.image is None:
            assert config_dir is not None
            _build(t, release, config_dir)
        else:
            assert config.build.image is not None
            with progress.step(f"use image {config.build.image}", "build"):
                ensure_image(runner, config.build.image)
                runner.change(builder.tag(config.build.image, release.image))
        if not release.image_id:
            found = runner.query(builder.image_id(release.image), check=False)
            release.image_id = found.out.strip() if found.ok else "<image id>"
        if config.release.command and release.kind != "rollback":
            _release_command(t, release, env_file)
        current = t.state.release(t.state.current) if t.state.current else None
        superseded = []
        if current is not None and current.number != release.number:
            current.outcome = "superseded"
            superseded.append(current)
        release.finished_at = now_iso()
        release.duration_s = round(time.monotonic() - started, 2)
        outcome = roll_out(t, release, env_file, on_live=superseded)
        if restore_env_of is not None:
            runner.change(change(
                ["cp", "-p", f"{t.app_dir}/env/v{release.number}.server",
                 env_state.env_path(t.app)],
                f"the server's environment becomes {restore_env_of.name}'s again"))
    except (DockyardError, KeyboardInterrupt) as exc:
        release.outcome = "failed"
        release.error = exc.message if isinstance(exc, DockyardError) else "interrupted"
        release.finished_at = now_iso()
        try:
            runner.change(write_files(t.app_dir, {f"releases/v{release.number}.json":
                                                  release.to_json()},
                                      f"record {release.name} as failed", mode=0o600))
            runner.flush_audit()
        except DockyardError:
            pass
        raise
    _https(t)
    _finish(t, release.number)
    return Result(release, outcome, time.monotonic() - started, progress.timings)


def _https(t: Target) -> None:
    tls.secure(t)


def _build(t: Target, release: Release, config_dir: Path) -> None:
    runner, config = t.runner, t.config
    context = (config_dir / config.build.context).resolve()
    tar_path, count = builder.make_context(context, config.build.dockerfile)
    try:
        with t.progress.step(f"build {release.image} on the server ({count} files)", "build"):
            cmd = builder.build_command(t.app, release.number, config.build.dockerfile,
                                        config.build.args, tar_path, count)
            try:
                runner.change(cmd, stream=runner.verbose)
            except CommandFailed as exc:
                raise DockyardError("DY056", f"the image build failed on {runner.host.label} "
                                    f"(exit {exc.returncode}); the running release is "
                                    "untouched", exc.details) from None
    finally:
        Path(tar_path).unlink(missing_ok=True)


def _release_command(t: Target, release: Release, env_file: str) -> None:
    runner, config = t.runner, t.config
    assert config.release.command is not None
    spec = ctr.ContainerSpec(t.app, "release", release.number, release.image, t.network,
                             ctr.container_name(t.app, "release", release.number), env_file,
                             config.release.command)
    with t.progress.step(f"run the release command: {' '.join(config.release.command)}",
                         "release"):
        result = runner.change(ctr.run_once(spec, "run the release command once, in a one-off "
                                            "container of the new image; if it fails, nothing "
                                            "else changes"), check=False)
        if result is not None and not result.ok:
            output = (result.out + result.err).splitlines()[-50:]
            raise DockyardError(
                "DY052", f"the release command failed (exit {result.returncode}); nothing was "
                "started or switched; its output follows",
                [f"  | {runner.redact(line)}" for line in output] or ["  (no output)"])
        if result is not None and runner.verbose:
            t.progress.note(runner.redact(result.out.rstrip()))


def _finish(t: Target, live: int | None = None) -> None:
    """Prune images beyond keep_releases (and dangling ones), in one command that also
    carries the pending audit lines."""
    runner = t.runner
    state = t.state
    keep_n = t.config.deploy.keep_releases
    outcomes = {r.number: r.outcome for r in state.releases}
    if live is not None:
        outcomes[live] = "live"
    good = sorted((n for n, o in outcomes.items() if o in ("live", "superseded")), reverse=True)
    keep = set(good[:keep_n])
    if state.current:
        keep.add(state.current)
    if live is not None:
        keep.add(live)
    newest = max(good, default=0)
    keep |= {n for n, o in outcomes.items() if o == "pending" and n > newest}
    runner.change(builder.prune(t.app, sorted(keep)), check=False)
    runner.flush_audit()
