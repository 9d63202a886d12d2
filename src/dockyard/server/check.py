"""``dockyard server check``: can this server take a deploy, and if not, what to fix.

Only read-only queries. Each check yields a row with a level: ``ok``, ``warn`` (worth knowing,
a deploy still works) or ``fail`` (a deploy would fail). Parsing lives in small pure
functions so unit tests cover it without a server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from dockyard.config.model import Config, ProxyConfig
from dockyard.docker import engine
from dockyard.errors import DockyardError
from dockyard.host.command import Answer, Fact, fact
from dockyard.host.runner import Runner
from dockyard.state import paths, snapshot
from dockyard.state import proxy as proxy_state

ROUTER = "dockyard-router"
MIN_DOCKER = (20, 10)
LOW_DISK_MB = 2048
BLOCKING_DISK_MB = 256


@dataclass
class Row:
    check: str
    level: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.strip().split("+")[0].split("-")[0].split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


def docker_row(returncode: int, out: str, err: str, user: str) -> Row:
    if returncode == 0 and out.strip():
        version = out.strip()
        if parse_version(version) < MIN_DOCKER:
            return Row("docker", "fail", f"Docker {version} is too old",
                       "upgrade Docker to 20.10 or newer")
        return Row("docker", "ok", f"Docker engine {version}")
    lowered = err.lower()
    if returncode == 127 or "not found" in lowered:
        return Row("docker", "fail", "Docker is not installed",
                   "run: dockyard server setup --install-docker")
    if "permission denied" in lowered:
        return Row("docker", "fail", f"{user} may not use the Docker engine",
                   f"add {user} to the docker group (usermod -aG docker {user}), or connect as root")
    if "cannot connect" in lowered or "is the docker daemon running" in lowered:
        return Row("docker", "fail", "the Docker engine is not running",
                   "start it: systemctl start docker")
    tail = err.strip().splitlines()[-1] if err.strip() else f"exit {returncode}"
    return Row("docker", "fail", f"docker failed: {tail}", "check the Docker installation")


def disk_row(df_output: str) -> Row:
    """From ``df -Pk PATH``: the last line's 4th column is free KiB."""
    lines = [line for line in df_output.strip().splitlines() if line.strip()]
    try:
        fields = lines[-1].split()
        free_mb = int(fields[3]) // 1024
        mount = fields[5] if len(fields) > 5 else "?"
    except (IndexError, ValueError):
        return Row("disk", "warn", "could not read free disk space", "")
    detail = f"{_size(free_mb)} free on {mount}"
    if free_mb < BLOCKING_DISK_MB:
        return Row("disk", "fail", detail, "free disk space: docker system prune, old logs")
    if free_mb < LOW_DISK_MB:
        return Row("disk", "warn", detail, "images need room: consider freeing space")
    return Row("disk", "ok", detail)


def _size(mb: int) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb} MB"


def listening_ports(proc_net_tcp: str) -> set[int]:
    """Ports in LISTEN state (0A) from /proc/net/tcp and /proc/net/tcp6 text."""
    ports: set[int] = set()
    for line in proc_net_tcp.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0] == "sl" or fields[3] != "0A":
            continue
        try:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except (IndexError, ValueError):
            continue
    return ports


def router_ports(docker_ps_ports: str) -> set[int]:
    """Host ports the router publishes, from ``docker ps --format {{.Ports}}``."""
    ports: set[int] = set()
    for item in docker_ps_ports.replace("\n", ",").split(","):
        if "->" not in item:
            continue
        host_side = item.split("->")[0].strip()
        port = host_side.rsplit(":", 1)[-1]
        if port.isdigit():
            ports.add(int(port))
    return ports


def port_rows(settings: ProxyConfig, listening: set[int], held_by_router: set[int]) -> list[Row]:
    rows = []
    for label, port in (("http port", settings.http_port), ("https port", settings.https_port)):
        if port not in listening:
            rows.append(Row(label, "ok", f"{port} is free"))
        elif port in held_by_router:
            rows.append(Row(label, "ok", f"{port} is served by {ROUTER}"))
        else:
            rows.append(Row(label, "fail", f"{port} is used by another program",
                            f"stop what listens on {port}, or choose another port in [proxy] "
                            "and run dockyard router apply"))
    return rows


def _answer(argv: list[str], why: str) -> Fact[Answer]:
    return fact(argv, lambda a: a, why)


def run_checks(runner: Runner, config: Config | None) -> list[Row]:
    """Every question in one round trip; the first answer also proves the connection (an
    unreachable host raises HostError)."""
    who, version, df, writable, server_proxy, tcp, ports = runner.read(
        snapshot.identity(),
        _answer(list(engine.server_version().argv), "the Docker engine's version (also "
                "proves we may use it)"),
        _answer(["df", "-Pk", "/var/lib"], "free disk space where Docker stores images"),
        fact(["test", "-w", paths.ROOT], lambda a: a.ok, f"is {paths.ROOT} ready?"),
        snapshot.proxy_settings(),
        _answer(["cat", "/proc/net/tcp", "/proc/net/tcp6"], "which ports are already taken"),
        _answer(list(engine.container_ports(ROUTER).argv), "the ports the router publishes"),
    )
    rows: list[Row] = []
    if runner.host.spec.kind == "local":
        rows.append(Row("connection", "ok", f"local engine, as {who.user}"))
    else:
        rows.append(Row("connection", "ok", f"SSH to {runner.host.label} as {who.user}"))
    docker = docker_row(version.returncode, version.out, version.err, who.user)
    rows.append(docker)
    rows.append(disk_row(df.out) if df.ok else Row("disk", "warn", "df failed"))
    if writable:
        rows.append(Row("state dir", "ok", f"{paths.ROOT} is writable"))
    else:
        rows.append(Row("state dir", "warn", f"{paths.ROOT} does not exist yet (or is not "
                        "writable)", "dockyard server setup (deploy also creates it)"))
    settings = server_proxy or (config.proxy if config else ProxyConfig())
    if config is not None and server_proxy is not None:
        try:
            proxy_state.effective(config, server_proxy)
            rows.append(Row("proxy settings", "ok", "dockyard.toml agrees with the server"))
        except DockyardError as exc:
            rows.append(Row("proxy settings", "fail", exc.message.split(";")[0],
                            "dockyard router apply, or remove the keys from [proxy]"))
    listening = listening_ports(tcp.out)
    held = router_ports(ports.out) if docker.level == "ok" and ports.ok else set()
    rows.extend(port_rows(settings, listening, held))
    return rows


def blocking(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.level == "fail"]
