"""Sites: names the router serves for services that are not Dockyard apps (Dockyard in
front of what a server already runs: `dockyard site add blog.example.com --to host:8081`).

A site is kept like an app with no containers: a router slot (apps/site-NAME/route.json,
``site`` says where it forwards), health checks, and HTTPS from the router's certificates.
Dockyard changes nothing of the service itself: a port on the server is reached through
Docker's bridge gateway (the service listens there, e.g. on 172.17.0.1); a container is
reached by the router joining one of its networks (the container is not touched).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from dockyard import values
from dockyard.config.model import Config
from dockyard.docker import networks
from dockyard.errors import DockyardError
from dockyard.host.command import Answer, Fact, fact
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.state.snapshot import Routes, routes

from . import tls
from .progress import Progress
from .target import locked, prepare

_TO = re.compile(r"(?P<name>host|[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}):(?P<port>[0-9]{1,5})")


def site_name(domain: str) -> str:
    """The app-like name a site is kept under: readable, at most 40 characters."""
    base = "site-" + domain.replace(".", "-")
    if len(base) <= 40:
        return base.rstrip("-")
    digest = hashlib.sha256(domain.encode()).hexdigest()[:6]
    return f"{base[:33].rstrip('-')}-{digest}"


def parse_to(value: str) -> tuple[str, int]:
    """``host:PORT`` or ``CONTAINER:PORT``; DY005 otherwise."""
    match = _TO.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        return match.group("name"), values.port(match.group("port"))
    except ValueError:
        raise DockyardError("DY005", f"--to {value!r}: write host:PORT (a port on the server) "
                            "or CONTAINER:PORT (a container's port), e.g. --to host:8081"
                            ) from None


def site_config(config: Config, domain: str, port: int, *, tls_on: bool,
                health: str) -> Config:
    """The file's server and [proxy], with the site's name, domain, port and checks."""
    return config.model_copy(update={
        "app": config.app.model_copy(update={"name": site_name(domain)}),
        "web": config.web.model_copy(update={"domains": [domain], "port": port, "tls": tls_on,
                                             "healthcheck": health}),
        "accessories": {}, "processes": {}})


def bridge_gateway() -> Fact[str]:
    """Docker records the gateway in the bridge's IPAM config only when it made docker0
    itself; else docker0 has the subnet's first address, as Docker gives it."""
    def parse(a: Answer) -> str:
        words = a.out.split()
        if not a.ok or not words:
            return ""
        if "/" not in words[0]:
            return words[0]
        try:
            return str(next(ipaddress.ip_network(words[-1], strict=False).hosts()))
        except (ValueError, StopIteration):
            return ""

    return fact(["docker", "network", "inspect", "--format",
                 "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}} {{end}}", "--", "bridge"],
                parse,
                "the server's address on Docker's bridge (a container reaches the host there)")


def container_networks(name: str) -> Fact[dict[str, str]]:
    """network -> the container's address on it ({} when there is no such container)."""
    def parse(a: Answer) -> dict[str, str]:
        found = {}
        for line in a.out.split("\n"):
            net, _, ip = line.strip().partition(" ")
            if net and ip:
                found[net] = ip
        return found

    return fact(["docker", "inspect", "--type=container", "--format",
                 "{{range $n, $c := .NetworkSettings.Networks}}{{$n}} {{$c.IPAddress}}\n{{end}}",
                 "--", name], parse, f"the networks of the container {name}")


def add(runner: Runner, config: Config, progress: Progress, domain: str, to: str, *,
        tls_on: bool, health: str) -> rc.Route:
    name, port = parse_to(to)
    cfg = site_config(config, domain, port, tls_on=tls_on, health=health)
    with locked(runner, cfg, progress, "site add") as t:
        if t.route is not None and t.route.site and t.route.site != to:
            raise DockyardError("DY043", f"{domain} already forwards to {t.route.site}; run "
                                f"dockyard site remove {domain} first")
        with progress.step("prepare the server", "prepare"):
            prepare(t)
        if name == "host":
            address = runner.read_one(bridge_gateway())
            if not address:
                raise DockyardError("DY020", "could not read the server's address on Docker's "
                                    "bridge network (docker network inspect bridge)")
        else:
            nets = runner.read_one(container_networks(name))
            if not nets:
                raise DockyardError("DY057", f"no container named {name} on "
                                    f"{runner.host.label}; see: docker ps")
            joined = [n for n in nets if n in t.snap.router.networks]
            net = joined[0] if joined else sorted(nets)[0]
            if not joined:
                runner.change(networks.connect(net, router.NAME))
            address = nets[net]
        route = t.route
        assert route is not None
        server = rc.server_names(route.slot)[0]
        route.servers = {server: address if name == "host" else name}
        route.site = to
        writer = t.writer()
        with progress.step(f"route {domain} to {to}", "switch"):
            writer.health_checks(route, server)
            writer.commit(t.app, route, why=f"route {domain} to {to} (a site: not a Dockyard "
                          "app)", before=[api.set_server_addr(route.backend, server, address,
                                                              port),
                                          api.set_server_state(route.backend, server, "ready")])
        tls.secure(t)
        return route


def listing(runner: Runner) -> list[rc.Route]:
    found: Routes = runner.read_one(routes())
    return sorted((r for r in found.routes if r.site), key=lambda r: r.domains[:1])
