"""The app on a swarm: one service per process and release, its environment in a Swarm
secret. Builders and facts only.

Why one service per release (and not ``docker service update``): Swarm's rolling update
stops an old task without asking the routers first (it has no pre-stop hook), so requests in
flight to it are cut. A new release is a new service next to the old one; the routers take
its tasks once their own checks pass and drain the old ones before the old service goes,
exactly as one server switches containers.

Why a secret for the environment: ``--env`` and ``--env-file`` write every value into the
service's spec, which ``docker service inspect`` shows to anyone with the Docker socket. A
Swarm secret is stored encrypted in the managers' Raft log, sent only to nodes that run a task
of the service, and mounted in memory at /run/secrets/; a small ``sh`` wrapper exports it
before the image's own entrypoint runs (images need /bin/sh, as nearly all do).
"""

from __future__ import annotations

import json
import secrets as random
import shlex
from dataclasses import dataclass, field

from dockyard.docker.containers import LOG_OPTS
from dockyard.host.command import Answer, Command, Fact, change, fact

SECRET_TARGET = "dockyard-env"
WRAPPER = f'set -a; . /run/secrets/{SECRET_TARGET}; set +a; exec "$@"'


def service_name(app: str, process: str, release: int) -> str:
    """``<app>-<process>-v<N>-<4 hex>``: a restart of the same release runs next to it."""
    return f"{app}-{process}-v{release}-{random.token_hex(2)}"


def dns_name(service: str) -> str:
    """Docker's DNS name for every task of a service (one A record per running task)."""
    return f"tasks.{service}"


def env_script(values: dict[str, str]) -> bytes:
    """The environment as the wrapper sources it: one ``KEY='value'`` line each."""
    lines = "".join(f"{key}={shlex.quote(value)}\n" for key, value in sorted(values.items()))
    return ("# the release's environment, exported by dockyard's wrapper\n" + lines).encode()


def create_secret(name: str, app: str, release: int, body: bytes, keys: int) -> Command:
    return change(["docker", "secret", "create", f"--label=dockyard.app={app}",
                   f"--label=dockyard.release={release}", "--", name, "-"],
                  "store the release's environment as a Swarm secret (encrypted, sent only "
                  "to nodes that run its tasks, never in the service's spec)",
                  stdin=body, stdin_label=f"<environment, {keys} keys>")


@dataclass(frozen=True)
class ImageConfig:
    entrypoint: list[str]
    cmd: list[str]


def image_config(image: str) -> Fact[ImageConfig]:
    def parse(a: Answer) -> ImageConfig:
        try:
            data = json.loads(a.out) if a.ok else {}
        except ValueError:
            data = {}
        return ImageConfig(list(data.get("Entrypoint") or []), list(data.get("Cmd") or []))

    return fact(["docker", "image", "inspect", "--format={{json .Config}}", "--", image], parse,
                "the image's entrypoint and command (the environment wrapper runs them)")


@dataclass
class ServiceSpec:
    app: str
    process: str
    release: int
    image: str  # the image id (sha256:...): every node has it, nothing is pulled
    network: str
    name: str
    replicas: int
    secret: str
    command: list[str]  # the full command after the wrapper: entrypoint + cmd
    stop_grace: float = 10.0
    limits: list[str] = field(default_factory=list)  # --limit-memory=..., --limit-cpu=...


def create(spec: ServiceSpec, why: str) -> Command:
    labels = [f"dockyard.app={spec.app}", f"dockyard.process={spec.process}",
              f"dockyard.release={spec.release}"]
    return change(
        ["docker", "service", "create", "--detach", "--quiet", f"--name={spec.name}",
         *(f"--label={k}" for k in labels), *(f"--container-label={k}" for k in labels),
         f"--replicas={spec.replicas}", "--endpoint-mode=dnsrr", f"--network={spec.network}",
         "--restart-condition=any", "--restart-delay=1s", "--init",
         f"--stop-grace-period={round(spec.stop_grace)}s",
         f"--secret=source={spec.secret},target={SECRET_TARGET},mode=0444", *spec.limits,
         "--no-resolve-image", *LOG_OPTS, "--entrypoint=/bin/sh", "--", spec.image,
         "-c", WRAPPER, SECRET_TARGET, *spec.command], why)


def remove(names: list[str]) -> Command:
    return change(["docker", "service", "rm", "--", *names],
                  "remove the old release's services (the routers drained them first)")


def remove_secrets(names: list[str]) -> Command:
    return change(["sh", "-c", 'docker secret rm -- "$@" >/dev/null 2>&1 || true', "rm-secrets",
                   *names], "remove the old releases' environment secrets")


@dataclass(frozen=True)
class Service:
    name: str
    process: str
    release: int


def _services(a: Answer) -> list[Service]:
    out = []
    for line in a.out.splitlines() if a.ok else []:
        parts = line.split("\t")
        if len(parts) == 3 and parts[2].isdigit():
            out.append(Service(parts[0], parts[1], int(parts[2])))
    return out


def app_services(app: str) -> Fact[list[Service]]:
    script = ('docker service ls -q --filter "label=dockyard.app=$1" | xargs -r docker service '
              'inspect --format \'{{.Spec.Name}}\t{{index .Spec.Labels "dockyard.process"}}\t'
              '{{index .Spec.Labels "dockyard.release"}}\'')
    return fact(["sh", "-c", script, "app-services", app], _services,
                "the app's services on the swarm")


def app_secrets(app: str) -> Fact[list[str]]:
    return fact(["docker", "secret", "ls", f"--filter=label=dockyard.app={app}",
                 "--format={{.Name}}"], lambda a: a.out.split() if a.ok else [],
                "the app's environment secrets")


@dataclass(frozen=True)
class TaskState:
    desired: str
    current: str
    node: str
    error: str


def tasks(service: str) -> Fact[list[TaskState]]:
    def parse(a: Answer) -> list[TaskState]:
        out = []
        for line in a.out.splitlines() if a.ok else []:
            parts = line.split("\t")
            if len(parts) >= 3:
                out.append(TaskState(parts[0].lower(), parts[1].split(" ")[0].lower(),
                                     parts[2], parts[3] if len(parts) > 3 else ""))
        return out

    return fact(["docker", "service", "ps", "--no-trunc", "--format",
                 "{{.DesiredState}}\t{{.CurrentState}}\t{{.Node}}\t{{.Error}}", "--", service],
                parse, f"the tasks of {service}")


def task_addresses(node_id: str, network: str = "") -> Fact[list[str]]:
    """The addresses of the tasks running on a node (on ``network``, or on any)."""
    script = ('for t in $(docker node ps -q --filter desired-state=running -- "$1"); do '
              'docker inspect --format \'{{range .NetworksAttachments}}{{if or (eq "\'"$2"\'" '
              '"") (eq .Network.Spec.Name "\'"$2"\'")}}{{range .Addresses}}{{.}} {{end}}{{end}}'
              '{{end}}\' "$t"; done')
    return fact(["sh", "-c", script, "task-addresses", node_id, network],
                lambda a: [w.split("/")[0] for w in a.out.split()] if a.ok else [],
                f"the addresses of the tasks on node {node_id[:12]}")


@dataclass(frozen=True)
class AppTask:
    """A running task of one of the app's services, for `status` and `logs`."""

    service: str
    process: str
    release: int
    task: str
    node: str
    state: str


def app_tasks(app: str) -> Fact[list[AppTask]]:
    script = ('for s in $(docker service ls -q --filter "label=dockyard.app=$1"); do '
              'meta=$(docker service inspect --format \'{{.Spec.Name}}\t{{index .Spec.Labels '
              '"dockyard.process"}}\t{{index .Spec.Labels "dockyard.release"}}\' "$s"); '
              'docker service ps --filter desired-state=running --format '
              '"$meta\t{{.Name}}\t{{.Node}}\t{{.CurrentState}}" "$s"; done')

    def parse(a: Answer) -> list[AppTask]:
        out = []
        for line in a.out.splitlines() if a.ok else []:
            parts = line.split("\t")
            if len(parts) == 6 and parts[2].isdigit():
                out.append(AppTask(parts[0], parts[1], int(parts[2]), parts[3], parts[4],
                                   parts[5]))
        return sorted(out, key=lambda t: (t.process != "web", t.process, -t.release, t.task))

    return fact(["sh", "-c", script, "app-tasks", app], parse,
                "the app's running tasks and their nodes")


def logs(service: str, *, tail: int, follow: bool) -> list[str]:
    """Every task's lines, each prefixed by its task and node (Docker's own prefix)."""
    return ["docker", "service", "logs", "--timestamps", f"--tail={tail}",
            *(["--follow"] if follow else []), "--", service]
