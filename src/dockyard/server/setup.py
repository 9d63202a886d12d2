"""Preparing a server: the state directory and, when asked, Docker itself.

Everything here is idempotent, and ``deploy``/``env set`` call ``ensure_state_dir`` so a
separate setup step is never required.
"""

from __future__ import annotations

from dockyard import scripts
from dockyard.errors import DockyardError
from dockyard.host.command import Command, Fact, change, fact
from dockyard.host.runner import Runner
from dockyard.state import paths, snapshot
from dockyard.state.snapshot import Identity


def state_dir_exists() -> Fact[bool]:
    return snapshot.directory(paths.ROOT, f"does {paths.ROOT} exist?")


def command_exists(name: str) -> Fact[bool]:
    return fact(scripts.inline("which", name), lambda a: a.ok, f"is {name} installed?")


def state_dir_commands(who: Identity) -> list[Command]:
    """Create /var/lib/dockyard (and apps/), owned by the SSH user, private to it."""
    dirs = [paths.ROOT, paths.APPS]
    why = (f"create {paths.ROOT}, where Dockyard keeps releases, env files, the audit log "
           "and the lock, readable only by you")
    if who.root:
        return [change(["install", "-d", "-m", "0750", *dirs], why)]
    return [change(["sudo", "-n", "install", "-d", "-o", who.user, "-m", "0750", *dirs], why)]


def install_docker_commands(who: Identity) -> list[Command]:
    """Docker from the distribution's packages (apt): no third-party repository."""
    sudo = [] if who.root else ["sudo", "-n"]
    env = ["env", "DEBIAN_FRONTEND=noninteractive"]
    return [
        change([*sudo, *env, "apt-get", "update", "-q"], "refresh the package lists"),
        change([*sudo, *env, "apt-get", "install", "-y", "-q", "docker.io"],
               "install Docker from the distribution's own packages"),
        change([*sudo, *scripts.inline("start-docker")], "start Docker now and at every boot"),
    ]


def setup(runner: Runner, *, install_docker: bool) -> list[str]:
    """Run (or print) what `server setup` needs; returns what it did, for the summary."""
    done: list[str] = []
    who, has_dir, has_docker, has_apt = runner.read(
        snapshot.identity(), state_dir_exists(), command_exists("docker"),
        command_exists("apt-get"))
    if install_docker:
        if has_docker:
            done.append("Docker is already installed")
        elif not has_apt:
            raise DockyardError(
                "DY016",
                f"{runner.host.label} has no apt-get; install Docker with your "
                "distribution's package manager, then run `dockyard server setup` again",
            )
        else:
            runner.change_all(install_docker_commands(who))
            done.append("installed Docker (docker.io)")
    if has_dir:
        done.append(f"{paths.ROOT} already exists")
    else:
        runner.change_all(state_dir_commands(who))
        done.append(f"created {paths.ROOT}")
    return done
