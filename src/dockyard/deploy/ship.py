"""Images made elsewhere: built on this machine and shipped layer by layer, or pulled from a
registry (with credentials that never touch the disk or an argv on the server).

Shipping (``[build] builder = "local"``), Kamal 2.8's design, measured in bench/ship:

1. a registry container on this machine, published on 127.0.0.1 on a port Docker picks
   (started for the command, stopped after it; its volume keeps the layers);
2. ``docker push`` into it: a local copy, and layers it already holds are not copied again;
3. an SSH reverse forward from a loopback port on the server to that registry, on the
   connection the command already holds (``ssh -O forward -R``), cancelled afterwards;
4. ``docker pull 127.0.0.1:PORT/...`` on the server: Docker downloads only the layers whose
   digests it lacks, through the forward. Any image store (classic or containerd) pulls.

No registry account, no port on a public interface, and nothing listening on either side
once the command ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dockyard import scripts
from dockyard.config.model import Config, RegistryConfig
from dockyard.errors import CommandFailed, ConfigError, DockyardError, PullFailed
from dockyard.host import sshopts
from dockyard.host.command import Answer, Command, Fact, change, fact, query
from dockyard.host.runner import Runner
from dockyard.values import image_registry, printable

from . import build as builder

#: The registry container on this machine (stopped between commands; its volume stays).
REGISTRY = "dockyard-registry"
REGISTRY_VOLUME = "dockyard-registry"
REGISTRY_LABEL = "dockyard.registry=cache"

#: Go's names for the machines `uname -m` names (docker version speaks Go's).
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "i386": "386"}


# -- platforms --------------------------------------------------------------------------------

def _platform(answer: Answer) -> str:
    text = answer.out.strip() if answer.ok else ""
    if "/" not in text:
        return ""
    os_name, arch = text.split("/", 1)
    return f"{os_name}/{_ARCH.get(arch, arch)}"


def server_platform() -> Fact[str]:
    """The server engine's platform, as Docker names it ("linux/amd64")."""
    return fact(["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], _platform,
                "which platform the server runs, so the image is built for it")


LOCAL_PLATFORM = query(["docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"],
                       "is Docker running on this machine, and for which platform")


def check_local_docker(runner: Runner) -> str:
    """The local engine answers: its platform. Asked before connecting to the server, so a
    missing Docker is one line before anything changes."""
    try:
        result = runner.local(LOCAL_PLATFORM, check=False, timeout=30)
    except FileNotFoundError:
        raise ConfigError("DY023", '[build] builder = "local" needs Docker on this machine, '
                          "and the docker command is not installed; install Docker "
                          "(https://docs.docker.com/engine/install/) or set [build] builder = "
                          '"server"') from None
    platform = _platform(Answer(result.returncode, result.out, result.err))
    if not platform:
        said = (result.err.strip().splitlines() or ["no answer"])[-1]
        raise ConfigError("DY023", '[build] builder = "local" needs Docker on this machine, '
                          f"and it does not answer ({printable(said)}); start Docker, or set "
                          '[build] builder = "server"')
    return platform


@dataclass(frozen=True)
class BuildPlan:
    """How this machine builds for the server: natively, or for another platform through
    buildx or QEMU (binfmt_misc)."""

    platform: str
    cross: bool
    buildx: bool


def _has_buildx(runner: Runner) -> bool:
    result = runner.local(query(["docker", "buildx", "version"], "is buildx installed"),
                          check=False, timeout=30)
    return result.ok


def _emulates(runner: Runner, platform: str, buildx: bool) -> bool:
    if buildx:
        result = runner.local(query(["docker", "buildx", "inspect"], "which platforms buildx "
                                    "can build"), check=False, timeout=30)
        for line in result.out.splitlines():
            if line.strip().startswith("Platforms:"):
                return platform in [p.strip().rstrip("*") for p in line.split(":", 1)[1]
                                    .split(",")]
        return False
    arch = platform.split("/", 1)[1]
    qemu = {v: k for k, v in _ARCH.items()}.get(arch, arch)
    return Path(f"/proc/sys/fs/binfmt_misc/qemu-{qemu}").exists()


def plan_build(runner: Runner, local: str, server: str) -> BuildPlan:
    """Native when the platforms match; cross-built when this machine can emulate the
    server's; otherwise a clear error (nothing has changed yet)."""
    buildx = _has_buildx(runner)
    if not server or local == server:
        return BuildPlan(server or local, False, buildx)
    if _emulates(runner, server, buildx):
        return BuildPlan(server, True, buildx)
    raise DockyardError(
        "DY024", f"the server runs {server} and this machine's Docker builds {local}, with no "
        f"emulation for {server}; install it (docker run --privileged --rm tonistiigi/binfmt "
        f"--install {server.split('/')[1]}), build on a machine of that platform (CI: "
        'docs/ci.md), or set [build] builder = "server"')


def local_build(app: str, release: int, dockerfile: str, args: dict[str, str],
                context_path: str, files: int, plan: BuildPlan,
                target: str | None = None) -> Command:
    """docker build on this machine, the context tar on stdin (the same tar, .dockerignore
    honoured, that a server build streams)."""
    tag = builder.image_tag(app, release)
    options = [f"--tag={tag}", f"--file={dockerfile}", f"--label=dockyard.app={app}",
               f"--label=dockyard.release={release}"]
    options += [f"--build-arg={k}={v}" for k, v in sorted(args.items())]
    if target:
        options.append(f"--target={target}")
    if plan.cross:
        options.append(f"--platform={plan.platform}")
    if plan.buildx:
        argv = ["docker", "buildx", "build", "--load", *options, "--", "-"]
    else:
        argv = ["env", "DOCKER_BUILDKIT=0", "docker", "build", *options, "--", "-"]
    return change(argv, f"build the image on this machine for {plan.platform}",
                  stdin_path=context_path, stdin_label=f"<build context: {files} files>",
                  if_fails="the build's output is printed; the server was not touched")


# -- the registry on this machine -------------------------------------------------------------

def _lock_path() -> Path:
    path = sshopts.runtime_dir()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path / "registry.lock"


class LocalRegistry:
    """The registry container on 127.0.0.1 while a command ships. Made at the command's
    start, it starts in the background (overlapping the server's reads and the build);
    ``port()`` waits for it; ``done()``, once the server has pulled, lets it go: the last
    dockyard command using it on this machine (a lock file: two may share it) stops it in a
    thread this process waits for before it exits, holding the lock until it has stopped,
    while the deploy goes on."""

    def __init__(self, runner: Runner, image: str) -> None:
        self.runner, self.image = runner, image
        self._released = False
        if runner.dry_run:
            runner.local(change(_run_argv(image), "start the local registry on 127.0.0.1 (a "
                                "port Docker picks)"))
            return
        self._lock = open(_lock_path(), "a+")  # noqa: SIM115 (closed once it is let go)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._starting = self._pool.submit(_start, runner, image)

    def port(self) -> int:
        if self.runner.dry_run:
            return 5000
        return self._starting.result()

    def done(self) -> None:
        if self._released:
            return
        self._released = True
        if self.runner.dry_run:
            self.runner.local(change(["docker", "stop", "--time=2", REGISTRY], "stop the "
                                     "local registry: nothing listens once the command ends"))
            return
        self._pool.shutdown(wait=True)  # a start still under way finishes first
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()  # another command still ships through it: it stops it
        else:
            threading.Thread(target=self._stop, name="registry-stop").start()

    def _stop(self) -> None:
        """Stop the container, then give up the lock (closing its file)."""
        try:
            self.runner.local(change(["docker", "stop", "--time=2", REGISTRY], "stop the "
                                     "local registry"), check=False)
        finally:
            self._lock.close()


@contextlib.contextmanager
def local_registry(runner: Runner, image: str) -> Iterator[LocalRegistry]:
    """A LocalRegistry for the block, let go at its end if the block did not."""
    registry = LocalRegistry(runner, image)
    try:
        yield registry
    finally:
        registry.done()


def _run_argv(image: str) -> list[str]:
    return ["docker", "run", "--detach", f"--name={REGISTRY}", f"--label={REGISTRY_LABEL}",
            "--publish=127.0.0.1::5000", f"--volume={REGISTRY_VOLUME}:/var/lib/registry",
            "--", image]


def _start(runner: Runner, image: str) -> int:
    state = runner.local(query(["docker", "container", "inspect", "--format",
                                "{{.State.Status}} {{.Config.Image}}", REGISTRY],
                               "is the local registry container there"), check=False)
    status, _, used = state.out.strip().partition(" ")
    exists = state.ok
    if exists and used != image:  # registry_image changed: a new container, same volume
        runner.local(change(["docker", "rm", "--force", REGISTRY], "replace the local "
                            "registry (another registry_image)"))
        exists = False
    try:
        if not exists:
            runner.local(change(_run_argv(image), "start a registry on 127.0.0.1 on this "
                                "machine (a port Docker picks)"), timeout=600)
        elif status != "running":
            runner.local(change(["docker", "start", REGISTRY], "start the local registry"))
    except CommandFailed as exc:
        raise DockyardError("DY025", f"the local registry ({image}) did not start on this "
                            "machine; set [build] registry_image to an image of the "
                            "official registry your Docker can pull", exc.details) from None
    published = runner.local(query(["docker", "port", REGISTRY, "5000/tcp"],
                                   "which port the registry got"))
    port = int(published.out.split()[0].rsplit(":", 1)[1])
    deadline = time.monotonic() + 20
    while True:  # it answers /v2/ once it serves
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                return port
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise DockyardError("DY025", f"the local registry on 127.0.0.1:{port} did "
                                    "not answer within 20s; see: docker logs "
                                    f"{REGISTRY}") from None
            time.sleep(0.05)


def push(runner: Runner, source: str, port: int) -> tuple[str, str]:
    """Push ``source`` into the local registry: (its name there, the manifest digest)."""
    name = f"127.0.0.1:{port}/{source}"
    runner.local(change(["docker", "tag", source, name], "name the image for the local "
                        "registry"))
    try:
        result = runner.local(change(["docker", "push", name], "copy the image into the "
                                     "local registry (layers it has are skipped)"),
                              timeout=3600)
    finally:
        runner.local(change(["docker", "image", "rm", "--no-prune", name],
                            "drop the temporary name"), check=False)
    digest = ""
    for line in result.out.splitlines():
        if "digest: sha256:" in line:
            digest = "sha256:" + line.split("digest: sha256:", 1)[1].split()[0]
    return name, digest


@dataclass(frozen=True)
class Pulled:
    image_id: str
    digest: str


def parse_pulled(output: str) -> Pulled:
    image_id = digest = ""
    for line in output.splitlines():
        if line.startswith("image "):
            image_id = line.split(" ", 1)[1].strip()
        elif line.startswith("digest "):
            ref = line.split(" ", 1)[1].strip()
            digest = ref.split("@", 1)[1] if "@" in ref else ""
    return Pulled(image_id, digest)


def pull_command(image: str, tag: str, *, untag: bool = False,
                 login: tuple[str, str, str] | None = None, why: str = "") -> Command:
    """scripts/pull.sh on the server. ``login``: (registry, user, password): the password
    travels on stdin only."""
    argv = [image, tag]
    if untag:
        argv.append("--untag")
    stdin = None
    label = ""
    if login is not None:
        registry, user, password = login
        argv += ["--login", registry, user]
        stdin = password.encode()
        label = "<registry password>"
    return change(scripts.argv("pull", *argv), why or f"pull {image} and name it {tag}",
                  stdin=stdin, stdin_label=label,
                  if_fails="nothing was started or switched; the release that serves now "
                  "keeps serving")


@contextlib.contextmanager
def reverse_forward(runner: Runner, port: int) -> Iterator[int]:
    """A loopback port on the server forwarded to ``port`` on this machine, over the
    command's SSH connection, for the block: the server's port."""
    host = runner.host
    if runner.dry_run:
        runner.note(f"# forward a loopback port on {host.label} to 127.0.0.1:{port} here "
                    "(ssh -O forward -R), cancelled afterwards")
        yield port
        return
    remote = host.reverse_forward(port)
    try:
        yield remote
    finally:
        host.cancel_reverse_forward(port)


def ship(runner: Runner, source: str, target: str, registry: LocalRegistry) -> Pulled:
    """Move ``source`` (an image on this machine) to the server as ``target`` through the
    local registry: only the layers the server lacks travel. The registry is let go as soon
    as the server has pulled."""
    local = registry.port()
    _, digest = push(runner, source, local)
    with reverse_forward(runner, local) as remote:
        repository = f"127.0.0.1:{remote}/{source}"
        try:
            result = runner.change(pull_command(
                repository, target, untag=True,
                why=f"pull the image from this machine through the SSH connection (only "
                f"the layers the server lacks travel), name it {target}"), timeout=3600)
        except CommandFailed as exc:
            raise DockyardError("DY026", "the server could not pull the image from this "
                                "machine through the SSH connection; the running "
                                "release is untouched", exc.details) from None
    registry.done()
    pulled = parse_pulled(result.out)
    return Pulled(pulled.image_id, pulled.digest or digest)


# -- images from a registry -------------------------------------------------------------------

def password(config: RegistryConfig) -> str:
    """The registry password from this machine: an environment variable or a command's
    first line. Read before connecting; never stored."""
    source = config.password
    if source.env is not None:
        value = os.environ.get(source.env, "")
        if not value:
            raise ConfigError("DY027", f"registry.password: the environment variable "
                              f"{source.env} is not set on this machine; export it (in CI: "
                              "from a secret) or use password = { command = \"...\" }")
        return value.strip("\r\n")
    assert source.command is not None
    shown = " ".join(source.command)
    try:
        proc = subprocess.run(source.command, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError("DY027", f"registry.password: the command {printable(shown)} could "
                          f"not run ({exc}); fix it or use password = {{ env = \"NAME\" }}"
                          ) from None
    lines = proc.stdout.decode(errors="replace").splitlines()
    if proc.returncode != 0 or not lines or not lines[0]:
        raise ConfigError("DY027", f"registry.password: the command {printable(shown)} "
                          f"{'exited ' + str(proc.returncode) if proc.returncode else 'printed nothing'}"
                          "; it must print the password on its first line")
    return lines[0]


def credentials(config: Config, image: str) -> tuple[str, str, str] | None:
    """(registry, user, password) when ``image`` is on the [registry] server."""
    reg = config.registry
    if reg is None or image_registry(image) != reg.server:
        return None
    return reg.server, reg.username, password(reg)


def pull_image(runner: Runner, image: str, target: str,
               login: tuple[str, str, str] | None) -> Pulled:
    """Pull a registry's image on the server (logging in through stdin when ``login``)."""
    if login is not None:
        runner.add_secrets([login[2]])
    try:
        result = runner.change(pull_command(image, target, login=login,
                                            why=f"pull {image} on the server and name it "
                                            f"{target}"), timeout=3600)
    except CommandFailed as exc:
        if exc.returncode == 41 and login is not None:
            raise DockyardError("DY028", f"{login[0]} refused the login of {login[1]!r} "
                                "(wrong password or token?); check [registry] username and "
                                "password; the running release is untouched",
                                exc.details) from None
        raise PullFailed(image, exc.command, exc.returncode, exc.stderr_tail,
                         runner.host.label) from None
    return parse_pulled(result.out)
