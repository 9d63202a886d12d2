"""What a command needs to know about the server, as facts read in one round trip.

Each extra SSH command costs a round trip (about 0.05-0.1 s here, more over the internet),
so a deploy asks everything it starts with at once, under its lock (scripts/lock.sh reads
them in the same round trip as it takes the lock). Each fact is a command and its parser
(host/command.py); nothing here splices another builder's argv.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from dockyard import scripts
from dockyard.accessories import commands as acc_commands
from dockyard.config.model import Config, ProxyConfig
from dockyard.docker import containers as ctr
from dockyard.docker import networks as nets
from dockyard.host.command import Answer, Fact, fact
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.state import env as env_state
from dockyard.state import paths
from dockyard.state import proxy as proxy_state
from dockyard.state.releases import AppState, read_state


@dataclass(frozen=True)
class Identity:
    user: str
    uid: int
    gid: int = 0

    @property
    def root(self) -> bool:
        return self.uid == 0


def parse_id(text: str) -> Identity:
    """``id``: "uid=1000(deploy) gid=1000(deploy) groups=..."."""
    uid = re.search(r"uid=([0-9]+)\(([^)]*)\)", text)
    gid = re.search(r"gid=([0-9]+)", text)
    if uid is None or gid is None:
        return Identity("?", -1, -1)
    return Identity(uid.group(2), int(uid.group(1)), int(gid.group(1)))


def identity() -> Fact[Identity]:
    return fact(["id"], lambda a: parse_id(a.out),
                "who we are on the server (root needs no sudo; the group opens the router's "
                "Runtime API socket to us)")


def exists(path: str, why: str = "") -> Fact[bool]:
    return fact(["test", "-e", path], lambda a: a.ok, why or f"does {path} exist?")


def directory(path: str, why: str = "") -> Fact[bool]:
    return fact(["test", "-d", path], lambda a: a.ok, why or f"does {path} exist?")


def image_present(ref: str) -> Fact[bool]:
    return fact(["docker", "image", "inspect", "--format={{.Id}}", "--", ref],
                lambda a: a.ok, f"is {ref} on the server already?")


def image_id(ref: str) -> Fact[str]:
    """The image's id, "" when the server does not have it."""
    return fact(["docker", "image", "inspect", "--format={{.Id}}", "--", ref],
                lambda a: a.out.strip() if a.ok else "", f"the id of {ref}, if the server has it")


def repo_digest(ref: str) -> Fact[str]:
    """The manifest digest the server pulled ``ref`` by ("sha256:..."), "" if none."""
    def parse(answer: Answer) -> str:
        for line in answer.out.splitlines() if answer.ok else []:
            if "@" in line:
                return line.split("@", 1)[1].strip()
        return ""
    return fact(["docker", "image", "inspect",
                 "--format={{range .RepoDigests}}{{println .}}{{end}}", "--", ref], parse,
                f"the digest of {ref}, if it came from a registry")


def proxy_settings() -> Fact[ProxyConfig | None]:
    return fact(["cat", "--", paths.PROXY_SETTINGS],
                lambda a: proxy_state.parse(a.out) if a.ok else None,
                "the router settings every app on this server shares")


def networks() -> Fact[set[str]]:
    return fact(["docker", "network", "ls", "--format={{.Name}}"],
                lambda a: {n.strip() for n in a.out.split("\n") if n.strip()},
                "which Docker networks exist")


@dataclass(frozen=True)
class RouterInfo:
    """The router as ``docker inspect`` saw it: its namespace holder (``dockyard-router``:
    ports and networks) and the HAProxy container in it, or the earlier one-container
    layout (``legacy``: dockyard-router runs HAProxy itself)."""

    exists: bool = False
    #: the holder runs, and HAProxy in it (legacy: the one container runs)
    running: bool = False
    started: str = ""
    networks: frozenset[str] = frozenset()
    legacy: bool = False
    haproxy: bool = False
    haproxy_running: bool = False
    holder_running: bool = False

    @property
    def on_legacy_network(self) -> bool:
        """A router created before its network was ``Dockyard``: its ports can move when an
        app's network comes or goes (docker/networks.py); ``router apply`` recreates it."""
        return self.exists and nets.ROUTER_NETWORK not in self.networks


@dataclass(frozen=True)
class Routes:
    """Every app's route, and the digest of the bytes they were read from: the router's
    files are written only if the server still has exactly these (write-files.sh)."""

    routes: tuple[rc.Route, ...] = ()
    digest: str = hashlib.sha256(b"").hexdigest()

    def of(self, app: str) -> rc.Route | None:
        return next((r for r in self.routes if r.app == app), None)

    def others(self, app: str) -> list[rc.Route]:
        return [r for r in self.routes if r.app != app]


def parse_routes(text: str) -> Routes:
    found = []
    for line in text.split("\n"):
        if line.strip():
            try:
                found.append(rc.Route.from_json(line))
            except (TypeError, ValueError):
                continue
    return Routes(tuple(found), hashlib.sha256(text.encode()).hexdigest())


def routes() -> Fact[Routes]:
    return fact(scripts.inline("read-routes"), lambda a: parse_routes(a.out),
                "every app's routing state (and its digest)")


def env(app: str) -> Fact[dict[str, str]]:
    return fact(["cat", "--", env_state.env_path(app)],
                lambda a: env_state.parse_env_file(a.out) if a.ok else {},
                f"read {app}'s environment (values stay in memory, never printed)")


@dataclass(frozen=True)
class Retiring:
    """A retirement still running on the server (an old release draining)."""

    container: str
    slots: tuple[str, ...]
    release: str


# -- what a deploy reads with few docker processes ------------------------------------------
# Each `docker` command is a process of its own on the server (tens of milliseconds, more on
# a busy one): the snapshot asks one `docker inspect` for Dockyard's own containers, one
# `docker ps` for the app's, one `docker image inspect` for the images, and splits them.

HELPERS_FORMAT = ('{{.Name}}\t{{.State.Running}}\t{{.State.Status}}\t{{.State.StartedAt}}\t'
                  '{{index .Config.Labels "dockyard.config"}}\t'
                  '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}')


@dataclass(frozen=True)
class Helpers:
    """Dockyard's own containers as one `docker inspect` saw them."""

    router: RouterInfo = field(default_factory=RouterInfo)
    #: name -> (config hash, state), for those that exist
    found: dict[str, tuple[str, str]] = field(default_factory=dict)


def helpers(names: list[str]) -> Fact[Helpers]:
    def parse(answer: Answer) -> Helpers:
        found: dict[str, tuple[str, str]] = {}
        seen: dict[str, list[str]] = {}
        for line in answer.out.split("\n"):
            parts = line.split("\t")
            if len(parts) != 6 or not parts[0]:
                continue
            name = parts[0].lstrip("/")
            seen[name] = parts
            found[name] = (parts[4] if parts[4] != "<no value>" else "", parts[2])
        router_seen = RouterInfo()
        if router.NAME in seen:
            _, running, _status, started, config, nets_text = seen[router.NAME]
            legacy = config != router.LAYOUT
            haproxy = seen.get(router.HAPROXY)
            haproxy_running = haproxy is not None and haproxy[1] == "true"
            router_seen = RouterInfo(
                True, running == "true" and (legacy or haproxy_running),
                haproxy[3] if haproxy is not None and not legacy else started,
                frozenset(nets_text.split()), legacy, haproxy is not None, haproxy_running,
                running == "true")
        return Helpers(router_seen, found)

    return fact(["docker", "inspect", "--type=container", f"--format={HELPERS_FORMAT}", "--",
                 *names], parse, f"which of {', '.join(names)} exist, run, and with which "
                 "settings (and the router's networks)?")


APP_FORMAT = ('{{.Names}}\t{{.Label "dockyard.process"}}\t{{.Label "dockyard.release"}}\t'
              '{{.State}}\t{{.Status}}\t{{.Label "dockyard.accessory"}}\t'
              '{{.Label "dockyard.accessory.type"}}\t{{.Image}}\t{{.Label "dockyard.config"}}\t'
              '{{.Label "dockyard.role"}}\t{{.Label "dockyard.slots"}}')


@dataclass(frozen=True)
class AppContainers:
    """Every container of one app, from one `docker ps`: its processes (all of them), its
    accessories, and the retirements still running."""

    containers: list[ctr.Listed] = field(default_factory=list)
    accessories: dict[str, acc_commands.Running] = field(default_factory=dict)
    retiring: list[Retiring] = field(default_factory=list)


def app_containers(app: str) -> Fact[AppContainers]:
    def parse(answer: Answer) -> AppContainers:
        out = AppContainers()
        for line in answer.out.split("\n"):
            parts = line.split("\t")
            if len(parts) != 11 or not parts[0]:
                continue
            (name, _process, release, state, status, accessory, kind, image, config, role,
             slots) = parts
            out.containers.extend(ctr.parse_list("\t".join(parts[:5])))
            if accessory:
                out.accessories[accessory] = acc_commands.Running(
                    name, accessory, kind, image, state, status, config)
            if role == "retire" and state == "running":
                out.retiring.append(Retiring(name, tuple(p for p in slots.split(",") if p),
                                             release))
        return out

    return fact(["docker", "ps", "-a", f"--filter=label=dockyard.app={app}",
                 f"--format={APP_FORMAT}"], parse,
                f"{app}'s containers: processes, accessories, retirements under way")


def images_present(refs: list[str]) -> Fact[dict[str, bool]]:
    """Which of ``refs`` the server has: `docker image inspect` prints the found ones and
    names each missing one on stderr."""
    def parse(answer: Answer) -> dict[str, bool]:
        if answer.ok:
            return dict.fromkeys(refs, True)
        if "No such image" not in answer.err:
            return dict.fromkeys(refs, False)  # the engine did not answer: pull, and see
        return {ref: f"No such image: {ref}\n" not in answer.err + "\n" for ref in refs}

    return fact(["docker", "image", "inspect", "--format={{.Id}}", "--", *refs], parse,
                f"which of {', '.join(refs)} are on the server already?")


@dataclass
class Snapshot:
    state_dir: bool = False
    who: Identity = field(default_factory=lambda: Identity("?", -1, -1))
    proxy: ProxyConfig | None = None
    app: AppState = field(default_factory=lambda: AppState([], None, None))
    networks: set[str] = field(default_factory=set)
    router: RouterInfo = field(default_factory=RouterInfo)
    routes: Routes = field(default_factory=Routes)
    env: dict[str, str] = field(default_factory=dict)
    #: the names of the server's variables that are secrets (None: no list yet, all are)
    env_secrets: set[str] | None = None
    accessories: dict[str, acc_commands.Running] = field(default_factory=dict)
    containers: list[ctr.Listed] = field(default_factory=list)
    retiring: list[Retiring] = field(default_factory=list)
    #: the backup scheduler / certificate container: (config hash, state), or None
    cron: tuple[str, str] | None = None
    certs: tuple[str, str] | None = None
    scripts: bool = False
    #: images the config names (router, tools, ACME client): present on the server?
    images: dict[str, bool] = field(default_factory=dict)
    default_cert: bool = False
    #: the lists the certificate container keeps (tls.map, crt-list) exist
    router_files: bool = False

    @property
    def router_exists(self) -> bool:
        return self.router.exists

    @property
    def router_running(self) -> bool:
        return self.router.running


def facts(app: str | None, config: Config | None = None) -> dict[str, Fact[Any]]:
    """Everything a deploy-like command reads first, by field of Snapshot (``app=None``:
    only the server-wide ones)."""
    from dockyard.accessories import cron
    from dockyard.certs import acme
    from dockyard.host.runner import scripts_installed

    proxy = config.proxy if config is not None else ProxyConfig()
    images = sorted({proxy.router_image, proxy.tools_image, proxy.acme_image})
    out: dict[str, Fact[Any]] = {
        "state_dir": directory(paths.ROOT),
        "who": identity(),
        "proxy": proxy_settings(),
        "networks": networks(),
        "helpers": helpers([router.NAME, router.HAPROXY, acme.NAME,
                            *([cron.container_name(app)] if app is not None else [])]),
        "routes": routes(),
        "scripts": scripts_installed(),
        "default_cert": exists(f"{router.ETC_DIR}/certs/default.pem"),
        "router_files": exists(f"{router.ETC_DIR}/tls.map"),
        "images": images_present(images),
    }
    if app is not None:
        out.update({
            "app": read_state(app),
            "env": env(app),
            "env_secrets": env_state.secret_keys(app),
            "app_containers": app_containers(app),
        })
    return out


def assemble(names: list[str], values: list[Any]) -> Snapshot:
    from dockyard.certs import acme

    snap = Snapshot()
    for name, value in zip(names, values, strict=True):
        if isinstance(value, Helpers):
            snap.router = value.router
            snap.certs = value.found.get(acme.NAME)
            # the last name asked about, when there is one: the app's scheduler
            snap.cron = next((v for k, v in value.found.items()
                              if k not in (router.NAME, router.HAPROXY, acme.NAME)), None)
        elif isinstance(value, AppContainers):
            snap.containers = value.containers
            snap.accessories = value.accessories
            snap.retiring = value.retiring
        else:
            setattr(snap, name, value)
    return snap
