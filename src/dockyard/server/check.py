"""``dockyard server check``: can this server take a deploy, and if not, what to fix.

Only read-only queries. Each check yields a row with a level: ``ok``, ``warn`` (worth knowing,
a deploy still works) or ``fail`` (a deploy would fail). Parsing lives in small pure
functions so unit tests cover it without a server.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field

from dockyard import scripts
from dockyard.config.model import Config, ProxyConfig
from dockyard.docker import engine
from dockyard.errors import DockyardError
from dockyard.host.command import Answer, Fact, fact
from dockyard.host.runner import Runner
from dockyard.router import config as rc
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


def published_ports(docker_ps_ports: str) -> set[int]:
    """Host ports a container publishes, from ``docker ps --format {{.Ports}}``."""
    ports: set[int] = set()
    for item in docker_ps_ports.replace("\n", ",").split(","):
        if "->" not in item:
            continue
        host_side = item.split("->")[0].strip()
        port = host_side.rsplit(":", 1)[-1]
        if port.isdigit():
            ports.add(int(port))
    return ports


#: Process names of web servers, and the `dockyard proxy snippet` kind for each.
WEB_SERVERS = {"nginx": "nginx", "apache2": "apache", "httpd": "apache", "caddy": "caddy",
               "traefik": "", "lighttpd": "", "haproxy": ""}
_USER = re.compile(r'\("([^"]+)",pid=(\d+)')


@dataclass
class HostFacts:
    """What already runs on the server (scripts/check-host.sh)."""
    #: port -> the processes listening on it ("nginx (pid 812)")
    listeners: dict[int, list[str]] = field(default_factory=dict)
    #: host port -> the container publishing it
    containers: dict[int, str] = field(default_factory=dict)
    #: (name, driver, subnets) of each Docker network
    networks: list[tuple[str, str, list[str]]] = field(default_factory=list)
    firewall: list[str] = field(default_factory=list)
    #: (destination, device) of the host's IPv4 routes
    routes: list[tuple[str, str]] = field(default_factory=list)

    def holder(self, port: int) -> tuple[str, str]:
        """(who, process name) for a port in use; ("", "") when not known."""
        if port in self.containers:
            return f"the container {self.containers[port]}", "docker"
        for entry in self.listeners.get(port, []):
            name = entry.split(" ", 1)[0]
            if name != "docker-proxy":
                return entry, name
        return "", ""


def parse_host(text: str) -> HostFacts:
    facts = HostFacts()
    pids_by_port: dict[int, dict[str, int]] = {}
    section = ""
    for line in text.split("\n"):
        if line in ("--listen", "--containers", "--networks", "--routes", "--firewall"):
            section = line
            continue
        if not line.strip():
            continue
        if section == "--listen":
            fields = line.split()
            local = fields[3] if len(fields) > 3 else ""
            number = local.rsplit(":", 1)[-1]
            if number.isdigit():
                pids = pids_by_port.setdefault(int(number), {})
                for name, pid in _USER.findall(line):  # a server's master has the lowest pid
                    pids[name] = min(pids.get(name, int(pid)), int(pid))
        elif section == "--containers":
            name, _, ports = line.partition("\t")
            for published in sorted(published_ports(ports)):
                facts.containers.setdefault(published, name.strip())
        elif section == "--networks":
            parts = line.split("\t")
            if len(parts) >= 2:
                facts.networks.append((parts[0], parts[1], parts[2].split() if len(parts) > 2
                                       else []))
        elif section == "--routes":
            words = line.split()
            if words and "dev" in words[:-1]:
                facts.routes.append((words[0], words[words.index("dev") + 1]))
        elif section == "--firewall":
            facts.firewall.append(line.strip())
    for listened, pids in pids_by_port.items():
        facts.listeners[listened] = [f"{name} (pid {pid})" for name, pid in pids.items()]
    return facts


def host_facts() -> Fact[HostFacts]:
    return fact(scripts.inline("check-host"), lambda a: parse_host(a.out),
                "what already runs here: listening ports and their programs, containers, "
                "Docker networks, firewall")


def _behind(name: str, kind: str) -> str:
    snippet = f"dockyard proxy snippet {kind}" if kind else "a forward to 127.0.0.1:8080"
    return (f"put Dockyard behind {name}: in dockyard.toml set [proxy] bind = \"127.0.0.1\", "
            "http_port = 8080, https_port = 8443 and [web] tls = false, run: dockyard "
            f"router apply, then install the output of: {snippet} (docs/guide.md: On a "
            "server that already runs things)")


def port_rows(settings: ProxyConfig, listening: set[int], held_by_router: set[int],
              host: HostFacts | None = None) -> list[Row]:
    rows = []
    host = host or HostFacts()
    for label, port in (("http port", settings.http_port), ("https port", settings.https_port)):
        if port not in listening:
            rows.append(Row(label, "ok", f"{port} is free"))
        elif port in held_by_router or host.containers.get(port) == ROUTER:
            rows.append(Row(label, "ok", f"{port} is served by {ROUTER}"))
        else:
            who, name = host.holder(port)
            if name in WEB_SERVERS:
                rows.append(Row(label, "fail", f"{port} is used by {who}",
                                _behind(name, WEB_SERVERS[name])))
            else:
                rows.append(Row(label, "fail", f"{port} is used by {who or 'another program'}",
                                f"stop what listens on {port}, or choose another port in "
                                "[proxy] and run dockyard router apply"))
    return rows


def chain(ports: list[int], domains: list[str]) -> Fact[str]:
    return fact(scripts.inline("chain", *map(str, ports), "--", *domains), lambda a: a.out,
                "does a request to each domain through the web server in front reach the "
                "router?")


def chain_rows(text: str, kind: str = "nginx") -> list[Row]:
    """One row per domain: ok when an answer through the web server in front came from the
    router (its Via header)."""
    if text.strip() == "nocurl":
        return [Row("chain", "warn", "curl is not on the server: the chain through the web "
                    "server in front was not checked", "apt-get install curl")]
    seen: dict[str, list[tuple[str, str, str]]] = {}
    for line in text.split("\n"):
        parts = line.split(" ")
        if len(parts) == 4:
            seen.setdefault(parts[0], []).append((parts[1], parts[2], parts[3]))
    rows = []
    for domain, answers in seen.items():
        through = [port for port, _status, via in answers if rc.VIA in via]
        if through:
            rows.append(Row(f"chain {domain}", "ok", f"a request on port {through[0]} reaches "
                            "the router through the web server in front"))
        else:
            got = ", ".join(f"port {p}: {s}" for p, s, _v in answers)
            rows.append(Row(f"chain {domain}", "fail", f"no request reached the router ({got})",
                            f"install the output of dockyard proxy snippet {kind} in the web "
                            "server in front, and reload it"))
    return rows


def network_row(host: HostFacts) -> Row:
    """Other Docker networks and their address pools: Dockyard's networks come from Docker's
    pools, which never overlap these."""
    others = [(n, subnets) for n, driver, subnets in host.networks
              if driver not in ("host", "null") and n != "bridge"]
    if not host.networks:
        return Row("docker networks", "warn", "could not list Docker's networks")
    listed = "; ".join(f"{n} {' '.join(s) or '(no subnet)'}" for n, s in others) or "none"
    clashes = overlaps(host)
    if clashes:
        return Row("docker networks", "warn", f"{len(others)} besides bridge: {listed}; "
                   f"overlapping the host's own routes: {'; '.join(clashes)}",
                   "addresses there are unreachable from containers: give Docker other "
                   "address pools (default-address-pools in /etc/docker/daemon.json)")
    return Row("docker networks", "ok", f"{len(others)} besides bridge: {listed}; none "
               "overlaps the host's routes (new ones come from Docker's pools, which avoid "
               "both)")


def overlaps(host: HostFacts) -> list[str]:
    """Docker networks whose subnet overlaps a host route that is not Docker's own bridge
    (a VPN, a LAN): such addresses would be unreachable from containers."""
    found = []
    for dest, dev in host.routes:
        if dest == "default" or dev == "docker0" or dev.startswith("br-"):
            continue
        try:
            route = ipaddress.ip_network(dest, strict=False)
        except ValueError:
            continue
        for name, _driver, subnets in host.networks:
            for subnet in subnets:
                try:
                    net = ipaddress.ip_network(subnet, strict=False)
                except ValueError:
                    continue
                if net.version == route.version and net.overlaps(route):
                    found.append(f"{name} {subnet} and {dest} on {dev}")
    return found


def firewall_row(host: HostFacts) -> Row:
    if any(line.lower().startswith("status: active") for line in host.firewall):
        return Row("firewall", "warn", "ufw is active; ports Docker publishes are open even "
                   "where ufw denies them (Docker writes its own rules)",
                   "publish on purpose: the router's ports are for the internet; with "
                   "Dockyard behind another server, [proxy] bind = \"127.0.0.1\" keeps them "
                   "on this machine")
    tables = [line.removeprefix("table ") for line in host.firewall if line.startswith("table")]
    if tables:
        return Row("firewall", "ok", f"no ufw; nftables tables: {', '.join(tables)} (Docker "
                   "adds its own rules for published ports)")
    return Row("firewall", "ok", "no ufw or nftables rules found")


def _answer(argv: list[str], why: str) -> Fact[Answer]:
    return fact(argv, lambda a: a, why)


def run_checks(runner: Runner, config: Config | None,
               through: list[int] | None = None) -> list[Row]:
    """Every question in one round trip; the first answer also proves the connection (an
    unreachable host raises HostError)."""
    who, version, df, writable, server_proxy, tcp, host = runner.read(
        snapshot.identity(),
        _answer(list(engine.server_version().argv), "the Docker engine's version (also "
                "proves we may use it)"),
        _answer(["df", "-Pk", "/var/lib"], "free disk space where Docker stores images"),
        fact(["test", "-w", paths.ROOT], lambda a: a.ok, f"is {paths.ROOT} ready?"),
        snapshot.proxy_settings(),
        _answer(["cat", "/proc/net/tcp", "/proc/net/tcp6"], "which ports are already taken"),
        host_facts(),
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
    held = {port for port, name in host.containers.items() if name == ROUTER}
    rows.extend(port_rows(settings, listening, held, host))
    if (config is not None and settings.behind_proxy and config.web.domains
            and settings.http_port in held):
        front = [name for name in (host.holder(p)[1] for p in (through or [80, 443]))
                 if name in WEB_SERVERS]
        rows.extend(chain_rows(runner.read_one(chain(through or [80, 443], config.web.domains)),
                               WEB_SERVERS.get(front[0], "") if front else "nginx"))
    if docker.level == "ok":
        rows.append(network_row(host))
    rows.append(firewall_row(host))
    return rows


def blocking(rows: list[Row]) -> list[Row]:
    return [row for row in rows if row.level == "fail"]
