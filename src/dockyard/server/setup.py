"""Preparing a server: the state directory and, when asked, Docker itself.

Everything here is idempotent, and ``deploy``/``env set`` call ``ensure_state_dir`` so a
separate setup step is never required.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.errors import DockyardError
from dockyard.host.command import Command, change, query
from dockyard.host.runner import Runner
from dockyard.state import paths


@dataclass(frozen=True)
class Identity:
    user: str
    uid: int
    gid: int = 0

    @property
    def root(self) -> bool:
        return self.uid == 0


def whoami() -> Command:
    return query(["sh", "-c", "id -un; id -u; id -g"],
                 "who we are on the server (root needs no sudo; the group opens the router's "
                 "Runtime API socket to us)")


def parse_identity(text: str) -> Identity:
    lines = text.split()
    if len(lines) < 3 or not lines[1].isdigit() or not lines[2].isdigit():
        return Identity(user=lines[0] if lines else "?", uid=-1, gid=-1)
    return Identity(user=lines[0], uid=int(lines[1]), gid=int(lines[2]))


def identity(runner: Runner) -> Identity:
    return parse_identity(runner.query(whoami()).out)


def state_dir_exists() -> Command:
    return query(["test", "-d", paths.ROOT], f"does {paths.ROOT} exist?")


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
        change([*sudo, "sh", "-c",
                "if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then "
                "systemctl enable --now docker; else service docker start; fi"],
               "start Docker now and at every boot"),
    ]


def ensure_state_dir(runner: Runner) -> bool:
    """Create the state directory when missing; True when something was (or would be) done."""
    if runner.query(state_dir_exists(), check=False).ok:
        return False
    runner.run_all(state_dir_commands(identity(runner)))
    return True


def setup(runner: Runner, *, install_docker: bool) -> list[str]:
    """Run (or print) what `server setup` needs; returns what it did, for the summary."""
    done: list[str] = []
    who = identity(runner)
    if install_docker:
        has_docker = runner.query(query(["sh", "-c", "command -v docker"],
                                        "is Docker installed?"), check=False).ok
        if has_docker:
            done.append("Docker is already installed")
        else:
            has_apt = runner.query(query(["sh", "-c", "command -v apt-get"],
                                         "can we use apt?"), check=False).ok
            if not has_apt:
                raise DockyardError(
                    "DY016",
                    f"{runner.host.label} has no apt-get; install Docker with your "
                    "distribution's package manager, then run `dockyard server setup` again",
                )
            runner.run_all(install_docker_commands(who))
            done.append("installed Docker (docker.io)")
    if runner.query(state_dir_exists(), check=False).ok:
        done.append(f"{paths.ROOT} already exists")
    else:
        runner.run_all(state_dir_commands(who))
        done.append(f"created {paths.ROOT}")
    return done
