"""deploy, rollback, env changes and restart: the orchestration. Each composes the same
pieces: take the app's lock (reading the server in the same round trip), prepare the server,
make a release (build, or reuse an image), and roll it out with the zero-downtime switch.

A deploy of an app that is already running costs four round trips: the lock and the facts,
the build, the start (records, release command, containers), and the switch (records as
live, router files, the old release's retirement started on the server).
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dockyard import scripts
from dockyard.accessories import flows as accessories
from dockyard.certs import acme
from dockyard.config.model import Config
from dockyard.docker import containers as ctr
from dockyard.errors import CommandFailed, DockyardError
from dockyard.host.command import Command
from dockyard.host.runner import Runner
from dockyard.state import env as env_state
from dockyard.state import paths, snapshot
from dockyard.state.files import write_files
from dockyard.state.releases import Kind, Outcome, Release

from . import build as builder
from . import ship, tls
from .progress import Progress
from .rollout import Switched, roll_out, with_extras
from .target import Target, locked, prepare

#: What a failed step means for a deploy-like command (dockyard explain prints it where a
#: step does not say more).
FAILS = ("the command stops here; the release that serves now keeps serving, and a new "
         "container that got no traffic yet is removed (running it again repairs the rest)")


@dataclass
class Result:
    release: Release
    outcome: Switched | None
    #: the command's duration (Runner.finish): from Dockyard's start to the end, the number
    #: --json and `history` show too
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    #: where the app answers now: https:// for names with a certificate, http:// otherwise
    urls: list[str] = field(default_factory=list)
    #: part of ``seconds`` spent waiting for a first certificate
    certificate_wait: float = 0.0

    def summary(self, app: str, what: str = "") -> str:
        where = f" on {', '.join(self.urls)}" if self.urls else ""
        waited = (f" ({seconds(self.certificate_wait)} of it waiting for the certificate)"
                  if self.certificate_wait >= 0.5 else "")
        return f"{app} {self.release.name} is live{what}{where} in {seconds(self.seconds)}{waited}"


def seconds(value: float) -> str:
    """A duration as every output writes it: one decimal, the unit attached ("7.8s"), so
    no line is ever wrapped between the number and its unit."""
    return f"{value:.1f}s"


def _finish(t: Target, release: Release, outcome: Switched, started_tls: float,
            missing: list[str]) -> Result:
    """The end of a deploy-like command: certificates done (``started_tls``: when their wait
    began), the duration taken once."""
    waited = t.runner.host.clock.now() - started_tls
    return Result(release, outcome, t.runner.finish(), {**t.progress.timings, **outcome.timings},
                  urls=urls(t, missing), certificate_wait=waited)


def urls(t: Target, missing: list[str]) -> list[str]:
    """The app's names as addresses: https:// where a certificate is served."""
    if t.route is None:
        return []
    secure = set(acme.tls_domains(t.route.domains, t.route.tls)) - set(missing)
    return [("https://" if d in secure else "http://") + d for d in t.route.domains]


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def config_hash(config: Config) -> str:
    data = json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def env_hash(merged: dict[str, str]) -> str:
    return hashlib.sha256(env_state.format_env(merged).encode()).hexdigest()[:16]


def env_file_path(app: str, release: int) -> str:
    """Each release's environment, as Docker's --env-file reads it (mode 0600)."""
    return f"{paths.app_dir(app)}/env/v{release}.env"


@dataclass
class Source:
    """Where a deploy's image comes from, settled before connecting (what this machine
    alone can check is checked first: the context, local Docker, a registry password)."""

    image: str | None = None  # a registry's image (--image or [build] image)
    login: tuple[str, str, str] | None = None  # (registry, user, password)
    local_platform: str = ""  # builder = "local": this machine's Docker platform
    plan: ship.BuildPlan | None = None  # builder = "local": how it builds for the server
    #: builder = "local": the local registry (it starts with the deploy)
    registry: ship.LocalRegistry | None = None


def source_of(runner: Runner, config: Config, config_dir: Path, image: str | None) -> Source:
    image = image or config.build.image
    if image is not None:
        return Source(image=image, login=ship.credentials(config, image))
    builder.check_context((config_dir / config.build.context), config.build.dockerfile)
    if config.build.builder == "local" and runner.host.spec.kind != "local":
        return Source(local_platform=ship.check_local_docker(runner))
    return Source()


def deploy(runner: Runner, config: Config, config_dir: Path, progress: Progress,
           image: str | None = None) -> Result:
    """Build (or take ``image``, deploy --image) and roll out a new release."""
    source = source_of(runner, config, config_dir, image)
    with contextlib.ExitStack() as local:
        if source.local_platform:  # a platform this machine cannot build for: before any change
            server = runner.read_one(ship.server_platform())
            source.plan = ship.plan_build(runner, source.local_platform, server)
            # the local registry starts while the server is read and the image builds; it
            # stops (in the background) once the server has pulled
            source.registry = local.enter_context(
                ship.local_registry(runner, config.build.registry_image))
        return _deploy(runner, config, config_dir, progress, source)


def _deploy(runner: Runner, config: Config, config_dir: Path, progress: Progress,
            source: Source) -> Result:
    runner.on_failure = FAILS
    composition = config.composition
    if composition is not None:
        runner.add_secrets(env_state.redactable(composition.secrets))
    with locked(runner, config, progress, "deploy") as t:
        with progress.step("prepare the server", "prepare"):
            prepare(t)
        if composition is not None:
            _compose_secrets(t, composition.secrets)
            _compose_volumes(t, composition.volumes)
        if config.accessories or config.cron or t.snap.cron is not None:
            site = accessories.from_target(t, config_dir)
            accessories.ensure_for_deploy(site)
        git = builder.git_info(config_dir)
        number = t.state.next_number
        release = Release(number=number, image=builder.image_tag(t.app, number),
                          kind=Kind.DEPLOY, git_commit=git.commit, git_dirty=git.dirty,
                          config_hash=config_hash(config), created_at=now_iso(),
                          user=getpass.getuser())
        return _release(t, release, config_dir=config_dir, origin=source)


def _compose_secrets(t: Target, wanted: dict[str, str]) -> None:
    """Values of a compose file that came from .env, the environment or an env_file: stored
    as `dockyard env set` stores secrets (through stdin, 0600), before accessories boot with
    them; nothing is written when the server has them already."""
    _, server = t.env
    if all(server.get(k) == v for k, v in wanted.items()):
        return
    new_server = {**server, **wanted}
    secrets = env_state.secrets_after(t.snap.env_secrets, server, new_server, set(wanted),
                                      set())
    changed = sorted(k for k, v in wanted.items() if server.get(k) != v)
    with t.progress.step(f"store {len(changed)} secret(s) from the compose file "
                         f"({', '.join(changed)})", "secrets"):
        t.runner.change_all([env_state.write_command(t.app, new_server, secrets)])
    t.snap.env, t.snap.env_secrets = new_server, secrets


def _compose_volumes(t: Target, names: list[str]) -> None:
    """Named volumes the compose file mounts in processes: created labelled with the app
    (`docker run -v` would make them unlabelled), kept across releases."""
    if names:
        t.runner.change_all([ctr.create_volume(name, t.app) for name in names])


def rollback(runner: Runner, config: Config, progress: Progress, to: int | None) -> Result:
    runner.on_failure = FAILS
    with locked(runner, config, progress, "rollback") as t:
        with progress.step("prepare the server", "prepare"):
            prepare(t, create=False)
        state = t.state
        target = state.release(to) if to is not None else state.previous()
        if target is None or not target.served:
            known = ", ".join(r.name for r in state.releases if r.served) or "none"
            what = f"v{to}" if to is not None else "a previous release"
            raise DockyardError("DY054", f"{t.app} has no {what} to roll back to; releases that "
                                f"were live: {known} (see: dockyard releases)")
        image_id, env_files = runner.read(snapshot.image_id(target.image),
                                          env_state.snapshot(t.app, target.number))
        assert isinstance(image_id, str)
        if not image_id:
            raise DockyardError("DY054", f"the image of {target.name} ({target.image}) is no "
                                "longer on the server (pruned: keep_releases); deploy instead")
        merged, server = env_files if env_files is not None else t.env
        runner.add_secrets(env_state.redactable(server))
        number = state.next_number
        release = Release(number=number, image=builder.image_tag(t.app, number),
                          kind=Kind.ROLLBACK, rollback_of=target.number, image_id=image_id,
                          git_commit=target.git_commit, git_dirty=target.git_dirty,
                          config_hash=target.config_hash, created_at=now_iso(),
                          user=getpass.getuser(), env_hash=env_hash(merged))
        return _release(t, release, source=target, env=(merged, server),
                        restore_server_env=server)


def env_release(runner: Runner, config: Config, progress: Progress,
                change_env: Callable[[dict[str, str]], dict[str, str]], *, restart: bool,
                secret: Iterable[str] = (), plain: Iterable[str] = (),
                ) -> tuple[Result | None, dict[str, str]]:
    """Change the server's environment (under the app's lock); when the app runs and
    ``restart``, make a release of the same image with it, switched with zero downtime.
    ``secret``/``plain``: names set as secrets (masked by `env list`) or as plain values."""
    runner.on_failure = FAILS
    with locked(runner, config, progress, "env") as t:
        _, server = t.env
        new_server = change_env(dict(server))
        runner.add_secrets(env_state.redactable(new_server))
        secrets = env_state.secrets_after(t.snap.env_secrets, server, new_server, set(secret),
                                          set(plain))
        store = env_state.write_command(t.app, new_server, secrets)
        current = t.state.live
        if current is None or not restart or new_server == server:
            changes: list[Command] = []
            if not t.snap.state_dir:
                from dockyard.server.setup import state_dir_commands

                changes += state_dir_commands(t.snap.who)
            runner.change_all([*changes, store])
            runner.flush_audit()
            return None, new_server
        with progress.step("prepare the server", "prepare"):
            prepare(t, create=False)
        number = t.state.next_number
        changed = sorted(set(new_server) ^ set(server)
                         | {k for k in new_server if server.get(k) != new_server[k]})
        release = Release(number=number, image=builder.image_tag(t.app, number), kind=Kind.ENV,
                          image_id=current.image_id, git_commit=current.git_commit,
                          git_dirty=current.git_dirty, config_hash=config_hash(config),
                          created_at=now_iso(), user=getpass.getuser(),
                          extra={"changed": changed})
        merged = {**config.env, **new_server}
        result = _release(t, release, source=current, env=(merged, new_server),
                          files=env_state.files(new_server, secrets))
        return result, new_server


def restart(runner: Runner, config: Config, progress: Progress) -> Result:
    """New containers of the current release, switched like a deploy; no new release."""
    runner.on_failure = FAILS
    with locked(runner, config, progress, "restart") as t:
        with progress.step("prepare the server", "prepare"):
            prepare(t, create=False)
        current = t.state.live
        if current is None:
            raise DockyardError("DY055", f"{t.app} has no live release to restart; run: "
                                "dockyard deploy")
        outcome = roll_out(t, current, env_file_path(t.app, current.number))
        started_tls = runner.host.clock.now()
        return _finish(t, current, outcome, started_tls, tls.secure(t))


def _release(t: Target, release: Release, *, config_dir: Path | None = None,
             origin: Source | None = None, source: Release | None = None,
             env: tuple[dict[str, str], dict[str, str]] | None = None,
             restore_server_env: dict[str, str] | None = None,
             files: dict[str, bytes] | None = None) -> Result:
    """Make ``release`` (build, reuse ``source``'s image, or the configured one) and roll it
    out. ``env``: (merged, server) for its snapshot (default: the server's now);
    ``restore_server_env``: the server's environment after the switch (a rollback brings the
    old values back, as Heroku does); ``files``: more files under the app's directory written
    with its record (the server's new environment)."""
    runner, config, progress = t.runner, t.config, t.progress
    clock = runner.host.clock
    merged, server = env if env is not None else t.env
    release.env_hash = release.env_hash or env_hash(merged)
    before: list[Command] = []
    try:
        if source is not None:
            with progress.step(f"reuse the image of {source.name}", "build"):
                before.append(builder.tag(source.image, release.image))
        elif origin is not None and origin.image is not None:
            before += _use_image(t, release, origin)
        elif origin is not None and origin.plan is not None:
            assert config_dir is not None
            _build_local(t, release, config_dir, origin)
        else:
            assert config_dir is not None
            release.image_id = _build(t, release, config_dir)
            release.image_source = "server build"
        record = {**(files or {}), f"releases/v{release.number}.json": release.to_json(),
                  f"env/v{release.number}.env": env_state.format_env(merged).encode(),
                  f"env/v{release.number}.server": env_state.format_env(server).encode(),
                  # where the server sends what happens without this machine (scripts/notify.sh)
                  "notify.url": (config.notify.webhook or "").encode(),
                  # how many releases `server prune` keeps for rollback
                  "keep": f"{config.deploy.keep_releases}\n".encode()}
        before.insert(0, write_files(t.app_dir, record, f"record {release.name} (pending) and "
                                     "its environment, readable only by you",
                                     label=f"<{release.name} record and env snapshot>",
                                     if_fails="nothing was started or switched; the release "
                                     "that serves now keeps serving"))
        env_file = env_file_path(t.app, release.number)
        command = None
        if config.release.command and release.kind != Kind.ROLLBACK:
            spec = with_extras(config, ctr.ContainerSpec(
                t.app, "release", release.number, release.image, t.network,
                ctr.container_name(t.app, "release", release.number), env_file,
                config.release.command))
            command = ctr.run_once(spec, "run the release command once, in a one-off "
                                   "container of the new image; if it fails, nothing else "
                                   "changes")
            command = Command(command.argv, command.why, if_fails="the release command's "
                              "output is printed; nothing was started or switched")
        release.finished_at = now_iso()
        live = dataclasses.replace(release, outcome=Outcome.LIVE)
        live_files = {f"releases/v{release.number}.json": live.to_json(),
                      "current": f"{release.number}\n".encode()}
        current = t.state.live
        if current is not None and current.number != release.number:
            current.outcome = Outcome.SUPERSEDED
            live_files[f"releases/v{current.number}.json"] = current.to_json()
        if restore_server_env is not None:
            live_files["env.server"] = env_state.format_env(restore_server_env).encode()
        outcome = roll_out(t, release, env_file, before=before, live_files=live_files,
                           release_command=command, prune=_prune(t, release.number))
    except (DockyardError, KeyboardInterrupt) as exc:
        release.outcome = Outcome.FAILED
        release.error = exc.message if isinstance(exc, DockyardError) else "interrupted"
        release.finished_at = now_iso()
        with contextlib.suppress(DockyardError):
            runner.change_all([write_files(t.app_dir, {f"releases/v{release.number}.json":
                                                       release.to_json()},
                                           f"record {release.name} as failed")], check=False)
        raise
    started_tls = clock.now()
    return _finish(t, release, outcome, started_tls, tls.secure(t))


def _use_image(t: Target, release: Release, origin: Source) -> list[Command]:
    """A registry's image: used as is when the server has it, pulled otherwise (logging in
    through stdin when [registry] names its registry)."""
    assert origin.image is not None
    image, runner = origin.image, t.runner
    release.image_source = image
    t.pull_login = origin.login  # a cluster's other nodes pull it themselves
    with t.progress.step(f"use image {image}", "build"):
        found, digests = runner.read(snapshot.image_id(image), snapshot.repo_digest(image))
        if found:
            release.image_id, release.image_digest = found, digests
            return [builder.tag(image, release.image)]
        pulled = ship.pull_image(runner, image, release.image, origin.login)
        release.image_id = pulled.image_id or "<image id>"
        release.image_digest = pulled.digest
        return []


def _build_local(t: Target, release: Release, config_dir: Path, origin: Source) -> None:
    """Build on this machine for the server's platform, then ship the layers it lacks."""
    runner, config, plan = t.runner, t.config, origin.plan
    assert plan is not None and origin.registry is not None
    context = (config_dir / config.build.context).resolve()
    tar_path, count = builder.make_context(context, config.build.dockerfile)
    try:
        with t.progress.step(f"build {release.image} on this machine ({count} files, "
                             f"{plan.platform})", "build"):
            cmd = ship.local_build(t.app, release.number, config.build.dockerfile,
                                   config.build.args, tar_path, count, plan,
                                   config.build.target)
            try:
                runner.local(cmd, stream=runner.verbose, timeout=3600)
            except CommandFailed as exc:
                raise DockyardError("DY056", f"the image build failed on this machine (exit "
                                    f"{exc.returncode}); the server was not touched",
                                    exc.details) from None
    finally:
        Path(tar_path).unlink(missing_ok=True)
    with t.progress.step(f"ship {release.image} to {runner.host.label} (the layers it lacks)",
                         "ship"):
        pulled = ship.ship(runner, release.image, release.image, origin.registry)
    release.image_id = pulled.image_id or "<image id>"
    release.image_digest = pulled.digest
    release.image_source = "local build"


def _build(t: Target, release: Release, config_dir: Path) -> str:
    """Build on the server from the context streamed over SSH; returns the image id."""
    runner, config = t.runner, t.config
    context = (config_dir / config.build.context).resolve()
    tar_path, count = builder.make_context(context, config.build.dockerfile)
    try:
        with t.progress.step(f"build {release.image} on the server ({count} files)", "build"):
            cmd = builder.build_command(t.app, release.number, config.build.dockerfile,
                                        config.build.args, tar_path, count,
                                        config.build.target)
            try:
                result = runner.change(cmd, stream=runner.verbose)
            except CommandFailed as exc:
                raise DockyardError("DY056", f"the image build failed on {runner.host.label} "
                                    f"(exit {exc.returncode}); the running release is "
                                    "untouched", exc.details) from None
    finally:
        Path(tar_path).unlink(missing_ok=True)
    return builder.built_id(result.out) or "<image id>"


def _prune(t: Target, live: int) -> Command:
    """Images beyond keep_releases go (and the app's dangling ones), with the switch."""
    keep_n = t.config.deploy.keep_releases
    outcomes = {r.number: r.outcome for r in t.state.releases}
    outcomes[live] = Outcome.LIVE
    good = sorted((n for n, o in outcomes.items() if o in (Outcome.LIVE, Outcome.SUPERSEDED)),
                  reverse=True)
    keep = set(good[:keep_n]) | {live}
    if t.state.current:
        keep.add(t.state.current)
    newest = max(good, default=0)
    keep |= {n for n, o in outcomes.items() if o == Outcome.PENDING and n > newest}
    return builder.prune(t.app, live, sorted(keep), f"{t.app_dir}/prune.log")


__all__ = ["FAILS", "Result", "deploy", "env_release", "restart", "rollback", "scripts"]
