"""Images made elsewhere, on the fake server: the local builder's checks before anything
changes (this machine's Docker, the platforms), and registry credentials that travel on
stdin only."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pytest

from dockyard.config.loader import parse_config
from dockyard.config.model import Config
from dockyard.deploy import deploy as flows
from dockyard.deploy import ship
from dockyard.deploy.progress import Progress
from dockyard.errors import DockyardError
from dockyard.host.base import Completed, Host
from dockyard.host.runner import Invocation, Runner
from dockyard.host.spec import HostSpec
from dockyard.state.releases import read_state
from tests.fake import FakeHost, FakeServer

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
PASSWORD = "s3cret-registry-pw"


class FakeLaptop(Host):
    """This machine's Docker as the local builder sees it."""

    def __init__(self, platform: str = "linux/amd64", *, installed: bool = True,
                 running: bool = True, emulates: Sequence[str] = ()) -> None:
        super().__init__(HostSpec(kind="local"))
        self.platform, self.installed, self.running = platform, installed, running
        self.emulates = list(emulates)
        self.commands: list[list[str]] = []

    def spawn_argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def execute(self, argv: Sequence[str], *, stdin: bytes | None = None,
                stream: bool = False, timeout: float | None = None,
                stdin_path: str | None = None, stdout_path: str | None = None) -> Completed:
        argv = list(argv)
        self.commands.append(argv)
        if not self.installed:
            raise FileNotFoundError("docker")
        if argv[:2] == ["docker", "version"]:
            if not self.running:
                return Completed(1, b"", b"Cannot connect to the Docker daemon at "
                                 b"unix:///var/run/docker.sock. Is the docker daemon running?\n",
                                 0.0)
            return Completed(0, f"{self.platform}\n".encode(), b"", 0.0)
        if argv[:3] == ["docker", "buildx", "version"]:
            return Completed(0 if self.emulates else 1, b"", b"", 0.0)
        if argv[:3] == ["docker", "buildx", "inspect"]:
            platforms = ", ".join([self.platform, *self.emulates])
            return Completed(0, f"Name: default\nPlatforms: {platforms}\n".encode(), b"", 0.0)
        return Completed(0, b"", b"", 0.0)


def config(extra: str = "", build: str = "") -> Config:
    return parse_config(
        f'[app]\nname = "hello"\n[server]\nhost = "ssh://root@fake:22"\n'
        f'[build]\ncontext = "{HELLO}"\n{build}'
        '[web]\nport = 8080\ndomains = ["hello.test"]\ntls = false\n'
        f'{extra}[proxy]\nrouter_image = "haproxy:2.8"\ntools_image = "dockyard-testbed/tools"\n')


def runner(server: FakeServer, laptop: Host | None = None, *, dry_run: bool = False,
           out: io.StringIO | None = None) -> Runner:
    r = Runner(FakeHost(server), invocation=Invocation("deploy", user="tester", app="hello"),
               dry_run=dry_run, out=out or io.StringIO())
    r._laptop = laptop
    return r


def deploy(server: FakeServer, cfg: Config, laptop: Host | None = None,
           image: str | None = None, **kwargs: object) -> flows.Result:
    return flows.deploy(runner(server, laptop, **kwargs), cfg, HELLO,  # type: ignore[arg-type]
                        Progress(quiet=True), image=image)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


LOCAL = 'builder = "local"\n'


@pytest.mark.parametrize(("laptop", "words"), [
    (FakeLaptop(installed=False), "the docker command is not installed"),
    (FakeLaptop(running=False), "Is the docker daemon running?"),
])
def test_no_docker_on_this_machine_is_one_line_before_connecting(
        server: FakeServer, laptop: FakeLaptop, words: str) -> None:
    with pytest.raises(DockyardError) as info:
        deploy(server, config(build=LOCAL), laptop)
    assert info.value.code == "DY023" and words in info.value.message
    assert 'builder = "server"' in info.value.message
    assert server.round_trips == 0  # never connected


@pytest.mark.parametrize(("here", "there"), [("linux/amd64", "linux/arm64"),
                                             ("linux/arm64", "linux/amd64")])
def test_another_platform_without_emulation_changes_nothing(server: FakeServer, here: str,
                                                            there: str) -> None:
    server.platform = there
    laptop = FakeLaptop(here)
    with pytest.raises(DockyardError) as info:
        deploy(server, config(build=LOCAL), laptop)
    message = info.value.message
    assert info.value.code == "DY024"
    assert f"the server runs {there} and this machine's Docker builds {here}" in message
    assert "binfmt" in message and 'builder = "server"' in message
    assert server.audit() == [] and server.containers == {}  # nothing changed
    assert not any(c[:2] == ["docker", "build"] or "build" in c for c in laptop.commands)


def test_another_platform_with_emulation_builds_for_the_server(server: FakeServer) -> None:
    server.platform = "linux/arm64"
    laptop = FakeLaptop("linux/amd64", emulates=["linux/arm64"])
    out = io.StringIO()
    deploy(server, config(build=LOCAL), laptop, dry_run=True, out=out)
    [build] = [line for line in out.getvalue().splitlines() if "buildx build" in line]
    assert "--platform=linux/arm64" in build and build.startswith("local$ docker buildx")


def test_the_local_builder_plan_shows_every_step(server: FakeServer) -> None:
    """--dry-run: the registry (started while the image builds), the build here, the push,
    the forward, the pull there."""
    out = io.StringIO()
    deploy(server, config(build=LOCAL), FakeLaptop(), dry_run=True, out=out)
    text = out.getvalue()
    order = ["local$ docker run --detach --name=dockyard-registry",
             "--publish=127.0.0.1::5000", "local$ env DOCKER_BUILDKIT=0 docker build",
             "local$ docker push",
             "ssh -O forward -R", "pull.sh", "--untag", "local$ docker stop"]
    positions = [text.find(word) for word in order]
    assert -1 not in positions and positions == sorted(positions), text


def test_registry_password_travels_on_stdin_only(server: FakeServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REG_PW", PASSWORD)
    server.registry_users = {"ci": PASSWORD}
    cfg = config(extra='[registry]\nserver = "ghcr.io"\nusername = "ci"\n'
                 'password = { env = "REG_PW" }\n')
    out = io.StringIO()
    deploy(server, cfg, image="ghcr.io/me/app:1", dry_run=True, out=out)
    assert "< <registry password>" in out.getvalue() and PASSWORD not in out.getvalue()
    result = deploy(server, cfg, image="ghcr.io/me/app:1")
    assert server.logins == [("ghcr.io", "ci", PASSWORD)]
    assert not [argv for argv in server.commands if PASSWORD in " ".join(argv)]
    assert PASSWORD not in "".join(v.decode(errors="replace") for v in server.files.values())
    assert result.release.image_source == "ghcr.io/me/app:1"
    assert result.release.image_digest.startswith("sha256:")
    # an image on another registry: no login
    deploy(server, cfg, image="docker.io/library/other:2")
    assert len(server.logins) == 1


def test_a_refused_login_is_one_line_and_the_old_release_serves(
        server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy(server, config())
    [before] = server.served("hello.test")
    monkeypatch.setenv("REG_PW", "wrong")
    server.registry_users = {"ci": PASSWORD}
    cfg = config(extra='[registry]\nserver = "ghcr.io"\nusername = "ci"\n'
                 'password = { env = "REG_PW" }\n')
    with pytest.raises(DockyardError) as info:
        deploy(server, cfg, image="ghcr.io/me/app:2")
    assert info.value.code == "DY028" and "refused the login of 'ci'" in info.value.message
    assert server.served("hello.test") == [before]
    state = runner(server).read_one(read_state("hello"))
    assert state.live is not None and state.live.number == 1


@pytest.mark.parametrize(("source", "words"), [
    ('{ env = "UNSET_REG_PW" }', "UNSET_REG_PW is not set"),
    ('{ command = "false" }', "exited 1"),
    ('{ command = "true" }', "printed nothing"),
    ('{ command = "/nonexistent/pass" }', "could not run"),
])
def test_a_password_that_cannot_be_read_stops_before_connecting(
        server: FakeServer, source: str, words: str) -> None:
    cfg = config(extra=f'[registry]\nserver = "ghcr.io"\nusername = "ci"\npassword = {source}\n')
    with pytest.raises(DockyardError) as info:
        deploy(server, cfg, image="ghcr.io/me/app:1")
    assert info.value.code == "DY027" and words in info.value.message
    assert server.round_trips == 0


def test_a_password_from_a_command(server: FakeServer) -> None:
    server.registry_users = {"ci": PASSWORD}
    cfg = config(extra='[registry]\nserver = "ghcr.io"\nusername = "ci"\n'
                 f'password = {{ command = "printf \'%s\\\\nignored\' {PASSWORD}" }}\n')
    assert ship.password(cfg.registry) == PASSWORD  # type: ignore[arg-type]
    deploy(server, cfg, image="ghcr.io/me/app:1")
    assert server.logins == [("ghcr.io", "ci", PASSWORD)]


@pytest.mark.parametrize(("ref", "registry"), [
    ("ghcr.io/me/app:1", "ghcr.io"), ("postgres:16", "docker.io"), ("me/app", "docker.io"),
    ("localhost:5000/app", "localhost:5000"), ("127.0.0.1:5000/a/b:c", "127.0.0.1:5000"),
])
def test_which_registry_an_image_names(ref: str, registry: str) -> None:
    from dockyard.values import image_registry

    assert image_registry(ref) == registry
