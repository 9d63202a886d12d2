"""Commands about app containers. Builders only: they return argv, never run anything.

Every container Dockyard creates carries ``dockyard.app``, ``dockyard.process`` and
``dockyard.release`` labels, runs with ``--init`` (signals reach the app, zombies are
reaped), restarts unless stopped, and rotates its json-file logs.

The argv shape every builder follows, so no value from a dockyard.toml can ever be read by
docker as an option: an option's value is joined to it (``--name=X``, ``--label=K=V``), and
positionals (image, container, network, the app's command) come after ``--``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from dockyard.host.command import Answer, Command, Fact, change, fact, query

LOG_OPTS = ("--log-driver=json-file", "--log-opt=max-size=10m", "--log-opt=max-file=5")
PS_FORMAT = ('{{.Names}}\t{{.Label "dockyard.process"}}\t{{.Label "dockyard.release"}}\t'
             "{{.State}}\t{{.Status}}")


def container_name(app: str, process: str, release: int) -> str:
    """``<app>-<process>-v<N>-<6 hex>``: unique, so a restart can run next to the old one."""
    return f"{app}-{process}-v{release}-{secrets.token_hex(3)}"


@dataclass
class ContainerSpec:
    app: str
    process: str
    release: int
    image: str
    network: str
    name: str
    env_file: str | None = None
    command: list[str] | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)
    limits: list[str] = field(default_factory=list)  # --memory=..., --cpus=...
    #: more docker run options (a compose service's entrypoint, volumes, user, own env)
    options: list[str] = field(default_factory=list)

    def labels(self) -> list[str]:
        out = [f"--label=dockyard.app={self.app}",
               f"--label=dockyard.process={self.process}",
               f"--label=dockyard.release={self.release}"]
        for key, value in sorted(self.extra_labels.items()):
            out.append(f"--label={key}={value}")
        return out

    def tail(self) -> list[str]:
        """``--env-file``, then ``--``, the image and the command: the end of a docker run."""
        argv = [f"--env-file={self.env_file}"] if self.env_file else []
        return [*argv, *self.options, "--", self.image, *(self.command or [])]


def create_volume(name: str, app: str) -> Command:
    """A named volume of the app's processes, labelled so `server status` and removals find
    it; creating one that exists changes nothing."""
    return change(["docker", "volume", "create", f"--label=dockyard.app={app}", "--", name],
                  f"the {name} volume keeps its data across releases")


def run(spec: ContainerSpec, why: str) -> Command:
    return change(["docker", "run", "-d", f"--name={spec.name}", *spec.labels(),
                   f"--network={spec.network}", "--init", "--restart=unless-stopped",
                   *spec.limits, *LOG_OPTS, *spec.tail()], why)


def run_once(spec: ContainerSpec, why: str) -> Command:
    """A one-off container (the release command): removed when it exits, output captured."""
    return change(["docker", "run", "--rm", f"--name={spec.name}", *spec.labels(),
                   f"--network={spec.network}", "--init", *LOG_OPTS, *spec.tail()], why)


def run_interactive(spec: ContainerSpec, *, tty: bool) -> Command:
    return change(["docker", "run", "--rm", "-i", *(["-t"] if tty else []),
                   f"--name={spec.name}", *spec.labels(), f"--network={spec.network}",
                   "--init", *spec.tail()],
                  f"run a one-off {spec.process} container of release v{spec.release}")


def list_app(app: str) -> Fact[list[Listed]]:
    return fact(["docker", "ps", "-a", f"--filter=label=dockyard.app={app}",
                 f"--format={PS_FORMAT}"], lambda a: parse_list(a.out),
                f"list {app}'s containers")


@dataclass(frozen=True)
class Listed:
    name: str
    process: str
    release: int
    state: str  # running, exited, created, restarting...
    status: str  # "Up 3 minutes"

    @property
    def running(self) -> bool:
        return self.state == "running"


def parse_list(text: str) -> list[Listed]:
    out = []
    for line in text.split("\n"):
        parts = line.split("\t")
        if len(parts) < 5 or not parts[0]:
            continue
        release = int(parts[2]) if parts[2].isascii() and parts[2].isdigit() else 0
        out.append(Listed(parts[0], parts[1], release, parts[3], parts[4]))
    return out


STATE_FORMAT = "{{.State.Status}} {{.State.Running}} {{.RestartCount}} {{.State.StartedAt}}"


def running(name: str) -> Fact[bool]:
    """Is the container running (not restarting, not exited)?"""
    def parse(answer: Answer) -> bool:
        fields = answer.out.split()
        return answer.ok and len(fields) >= 3 and fields[0] == "running" and fields[1] == "true"

    return fact(["docker", "inspect", f"--format={STATE_FORMAT}", "--", name], parse,
                f"is {name} still running?")


def stayed_up(name: str) -> Fact[bool]:
    """Is the container running and was it never restarted? A process that exits at once is
    restarted by its policy and may be caught running between two crashes: its restart count
    tells."""
    def parse(answer: Answer) -> bool:
        fields = answer.out.split()
        return (answer.ok and len(fields) >= 3 and fields[0] == "running"
                and fields[1] == "true" and fields[2] == "0")

    return fact(["docker", "inspect", f"--format={STATE_FORMAT}", "--", name], parse,
                f"is {name} still running, never restarted?")


@dataclass(frozen=True)
class MemoryKill:
    """A container the kernel killed for exceeding its memory limit (its last exit)."""

    name: str
    restarts: int
    limit_bytes: int

    def describe(self) -> str:
        limit = f" of {self.limit_bytes // (1 << 20)}m" if self.limit_bytes else ""
        return (f"killed for exceeding its memory limit{limit} "
                f"(restarted {self.restarts} time{'s' if self.restarts != 1 else ''})")


def memory_kills(names: list[str]) -> Fact[dict[str, MemoryKill]]:
    """Which of ``names`` were last stopped by the kernel's out-of-memory killer (Docker keeps
    State.OOMKilled set after the restart policy started them again)."""
    def parse(answer: Answer) -> dict[str, MemoryKill]:
        out = {}
        for line in answer.out.split("\n"):
            parts = line.split()
            if len(parts) == 4 and parts[1] == "true" and parts[2].isdigit() \
                    and parts[3].isdigit():
                name = parts[0].lstrip("/")
                out[name] = MemoryKill(name, int(parts[2]), int(parts[3]))
        return out

    return fact(["docker", "inspect", "--format={{.Name}} {{.State.OOMKilled}} "
                 "{{.RestartCount}} {{.HostConfig.Memory}}", "--", *(names or ["-"])], parse,
                "which containers were killed for exceeding their memory limit?")


def address(name: str, network: str) -> Fact[str]:
    return fact(["docker", "inspect",
                 f'--format={{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}',
                 "--", name], lambda a: a.out.strip() if a.ok else "",
                f"{name}'s address on the {network} network")


def logs_fact(name: str, tail: int) -> Fact[list[str]]:
    return fact(["docker", "logs", f"--tail={tail}", "--", name],
                lambda a: (a.out + a.err).split("\n") if (a.out + a.err).strip() else [],
                f"the last {tail} log lines of {name}")


def remove_all(names: list[str]) -> Command:
    return change(["docker", "rm", "-f", "--", *names],
                  f"remove {', '.join(names)}: they never got traffic")


def remove(name: str) -> Command:
    return change(["docker", "rm", "-f", "--", name], f"remove {name}")


def logs(name: str, *, tail: int = 50, follow: bool = False) -> Command:
    argv = ["docker", "logs", f"--tail={tail}"]
    if follow:
        argv.append("-f")
    return query([*argv, "--", name], f"the last {tail} log lines of {name}")


def exec_in(name: str, command: list[str], *, tty: bool) -> Command:
    return change(["docker", "exec", "-i", *(["-t"] if tty else []), "--", name, *command],
                  f"run a command inside {name}")
