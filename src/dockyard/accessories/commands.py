"""Docker commands for accessories. Builders only: they return argv, never run anything.

Accessory containers carry ``dockyard.app`` and ``dockyard.accessory`` (no
``dockyard.process``), so app deploys, which retire containers by process, never touch them.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockyard import scripts, values
from dockyard.docker.containers import LOG_OPTS
from dockyard.host.command import Command, Fact, change, fact, query

from .spec import Accessory

LIST_FORMAT = ('{{.Names}}\t{{.Label "dockyard.accessory"}}\t{{.Label "dockyard.accessory.type"}}'
               '\t{{.Image}}\t{{.State}}\t{{.Status}}\t{{.Label "dockyard.config"}}')
READY_TIMEOUT = 120


def create_volumes(acc: Accessory) -> list[Command]:
    """Docker volumes are created explicitly, labelled, so ``remove --volumes`` finds them;
    creating one that exists changes nothing."""
    return [change(["docker", "volume", "create", f"--label=dockyard.app={acc.app}",
                    f"--label=dockyard.accessory={acc.name}", "--", m.source],
                   f"the {m.source} volume holds {acc.name}'s data; it outlives the container")
            for m in acc.mounts() if m.named]


def run(acc: Accessory, config_hash: str) -> Command:
    argv = ["docker", "run", "-d", f"--name={acc.container}",
            f"--label=dockyard.app={acc.app}", f"--label=dockyard.accessory={acc.name}",
            f"--label=dockyard.accessory.type={acc.kind}",
            f"--label=dockyard.config={config_hash}",
            f"--network={acc.network}", f"--network-alias={acc.name}",
            "--init", "--restart=unless-stopped",
            *values.limits(acc.config.memory, acc.config.cpus), *LOG_OPTS,
            f"--env-file={acc.env_file}"]
    for m in acc.mounts():
        argv.append(f"--volume={m.arg}")
    for up in acc.uploads():
        argv.append(f"--volume={acc.files_dir}/{up.stored}:{up.target}:ro")
    published = acc.publish()
    if published:
        argv.append(f"--publish={published}")
    argv += ["--", acc.image, *(acc.config.cmd or [])]
    why = (f"start {acc.name} ({acc.kind}) on the {acc.network} network, where the app "
           f"reaches it as {acc.name}; restarted by Docker unless stopped")
    return change(argv, why)


def start(acc: Accessory) -> Command:
    return change(["docker", "start", "--", acc.container], f"start {acc.container}")


def stop(acc: Accessory) -> Command:
    return change(["docker", "stop", "--", acc.container],
                  f"stop {acc.container} (its data stays in its volumes)")


def restart(acc: Accessory) -> Command:
    return change(["docker", "restart", "--", acc.container], f"restart {acc.container}")


def remove(acc: Accessory) -> Command:
    return change(["docker", "rm", "-f", "--", acc.container],
                  f"remove the {acc.container} container (volumes are kept)")


def remove_container(container: str, name: str) -> Command:
    return change(["docker", "rm", "-f", "--", container],
                  f"remove {name}'s container, gone from the compose file (volumes are kept)")


def volumes_of(app: str, name: str) -> Fact[list[str]]:
    """The named volumes made for accessory ``name`` (by their labels)."""
    return fact(["docker", "volume", "ls", "-q", f"--filter=label=dockyard.app={app}",
                 f"--filter=label=dockyard.accessory={name}"],
                lambda answer: sorted(answer.out.split()), f"{name}'s volumes")


def remove_volumes(acc: Accessory) -> Command | None:
    named = [m.source for m in acc.mounts() if m.named]
    if not named:
        return None
    return change(["docker", "volume", "rm", "-f", "--", *named],
                  f"delete {acc.name}'s volumes: its data is gone after this")


def logs(acc: Accessory, *, tail: int, follow: bool) -> Command:
    argv = ["docker", "logs", f"--tail={tail}", *(["-f"] if follow else []), "--",
            acc.container]
    return query(argv, f"{acc.container}'s logs")


def exec_in(acc: Accessory, command: list[str], *, tty: bool) -> Command:
    return change(["docker", "exec", "-i", *(["-t"] if tty else []), "--", acc.container,
                   *command],
                  f"run a command inside {acc.container}")


def list_all(app: str) -> Fact[dict[str, Running]]:
    return fact(["docker", "ps", "-a", f"--filter=label=dockyard.app={app}",
                 "--filter=label=dockyard.accessory", f"--format={LIST_FORMAT}"],
                lambda a: parse_list(a.out), f"list {app}'s accessories")


@dataclass(frozen=True)
class Running:
    container: str
    name: str
    kind: str
    image: str
    state: str
    status: str
    config_hash: str

    @property
    def running(self) -> bool:
        return self.state == "running"


def parse_list(text: str) -> dict[str, Running]:
    out = {}
    for line in text.split("\n"):
        parts = line.split("\t")
        if len(parts) >= 7 and parts[1]:
            out[parts[1]] = Running(*parts[:7])
    return out


def wait_ready(acc: Accessory, timeout: int = READY_TIMEOUT) -> Command:
    check = {"postgres": "pg_isready", "redis": "redis-cli ping"}.get(
        acc.kind, "its HEALTHCHECK, or running when it has none")
    return query(scripts.inline("ready", acc.container, acc.kind, str(timeout)),
                 f"wait until {acc.name} answers ({check}), at most {timeout}s")


def image_major(image: str) -> Fact[str]:
    """The PostgreSQL version an image would run (``postgres --version``); "" unknown."""
    return fact(["docker", "run", "--rm", "--entrypoint=postgres", "--network=none", "--",
                 image, "--version"], lambda a: a.out if a.ok else "",
                f"which PostgreSQL version {image} runs")


def data_major(acc: Accessory) -> Fact[str]:
    """The major version the data directory was created by (its PG_VERSION file; the
    command runs in the accessory's container, where $PGDATA is set)."""
    return fact(["docker", "exec", "--", acc.container, "sh", "-c",
                 'cat "${PGDATA:-/var/lib/postgresql/data}/PG_VERSION"'],
                lambda a: a.out if a.ok else "",
                f"which PostgreSQL version created {acc.name}'s data")
