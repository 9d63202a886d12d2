"""From a compose project to Dockyard's own terms: which service is routed (the web
process), which are accessories (stateful: named volumes, or images of known databases),
which are processes, which one-shot service is the release command.

The translation writes the same tables a dockyard.toml would ([build], [web], [processes],
[accessories], [env], [release]), under the file's own: what dockyard.toml says wins. What a
table cannot say (a process's own image, entrypoint, labels, volumes) travels in
:class:`Extras`, read by the roll-out. Values that came from ``.env``, the laptop's environment
or an ``env_file`` are :attr:`Composition.secrets`: stored on the server as ``dockyard env``
values are, never in argv, output or labels. Anything that cannot be honoured is an error
(DY008) or a :class:`~dockyard.compose.load.Note`, named by service and key, before anything
changes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard import values
from dockyard.config.duration import parse_duration
from dockyard.config.model import ComposeConfig, detect_type
from dockyard.errors import ConfigError

from .load import FromEnv, Note, Project, load, read_dotenv

#: Service keys the translation reads. Anything else is said as not honoured.
HONOURED = {"image", "build", "command", "entrypoint", "environment", "env_file", "ports",
            "expose", "volumes", "depends_on", "deploy", "healthcheck", "labels", "profiles",
            "restart", "networks", "user", "working_dir", "stop_grace_period", "x-dockyard",
            "extends", "container_name", "network_mode", "secrets", "configs", "init",
            "hostname", "tty", "stdin_open", "logging"}
#: Silently fine: Dockyard does the same or better on its own.
_SAME = {"init", "tty", "stdin_open", "hostname", "logging"}
ROLES = ("web", "process", "accessory", "release", "skip")


@dataclass
class Extras:
    """What a process's container needs beyond the app's image and environment."""

    image: str | None = None  # its own image (image: without the app's build)
    entrypoint: list[str] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)  # "-v" values: app-NAME:/path[:ro]
    env: dict[str, str] = field(default_factory=dict)  # plain values of its own
    user: str | None = None
    workdir: str | None = None

    def options(self) -> list[str]:
        """docker run options, before the image."""
        out = []
        if self.entrypoint:
            out.append(f"--entrypoint={self.entrypoint[0]}")
        if self.user:
            out.append(f"--user={self.user}")
        if self.workdir:
            out.append(f"--workdir={self.workdir}")
        out += [f"--volume={v}" for v in self.volumes]
        out += [f"--env={k}={v}" for k, v in sorted(self.env.items())]
        return out

    def command(self, command: list[str] | None) -> list[str] | None:
        """An entrypoint's own arguments come before the command (Docker takes one word)."""
        if self.entrypoint:
            return [*self.entrypoint[1:], *(command or [])]
        return command


@dataclass
class Routed:
    """A routed service after the first: its process gets a router backend of its own."""

    port: int
    domains: list[str]
    healthcheck: str = "/up"


@dataclass
class Plan:
    """One service: what it becomes, and why."""

    service: str
    role: str
    why: str
    name: str = ""  # its Dockyard name: "web", the process's or the accessory's


@dataclass
class Composition:
    """The compose file's reading, kept with the Config (``config.composition``)."""

    files: list[Path]
    plans: list[Plan]
    secrets: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Extras] = field(default_factory=dict)  # by process name ("web" too)
    routes: dict[str, Routed] = field(default_factory=dict)  # routed processes after web
    volumes: list[str] = field(default_factory=list)  # named volumes of processes, on server
    notes: list[Note] = field(default_factory=list)
    inactive: list[str] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        return self.files[0].name

    def process_of(self, name: str) -> str:
        """A service's name as a Dockyard process name (the routed service is "web")."""
        for plan in self.plans:
            if plan.service == name and plan.role in ("web", "process"):
                return plan.name
        return name

    def service_of(self, process: str) -> str:
        """The compose service a process comes from (its own name when none does)."""
        for plan in self.plans:
            if plan.name == process and plan.role in ("web", "process"):
                return plan.service
        return process

    def accessory_of(self, name: str) -> str:
        for plan in self.plans:
            if plan.service == name and plan.role == "accessory":
                return plan.name
        return name

    def lines(self) -> list[str]:
        """Service by service, what Dockyard understood; then every note."""
        out = [f"{p.service}: {p.why}" for p in self.plans]
        out += [f"{name}: not started (its profiles are not enabled)" for name in self.inactive]
        out += [note.line(self.file_name) for note in self.notes]
        return out


def fail(file: str, service: str | None, key: str, text: str) -> ConfigError:
    where = f"service {service!r}, " if service else ""
    return ConfigError("DY008", f"{file}: {where}{key}: {text}")


# -- reading the values ------------------------------------------------------------------------

def _command(value: Any, file: str, service: str, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise fail(file, service, key, f"cannot be split like a shell command ({exc}); "
                       "write a list") from None
        return words or None
    if isinstance(value, list):
        return [str(v) for v in value] or None
    raise fail(file, service, key, "write a string or a list")


def _secret_or_plain(env: Mapping[str, Any], environ: Mapping[str, str]
                     ) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) values of an environment: a key without value takes the laptop's."""
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for key, value in env.items():
        if value is None:
            if key in environ:
                secret[key] = environ[key]
            continue
        (secret if isinstance(value, FromEnv) else plain)[key] = str(value)
    return plain, secret


def _memory(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower().removesuffix("b")
    return text if re.fullmatch(r"[0-9]+[kmg]?", text) else str(value)


@dataclass
class _Service:
    name: str
    data: dict[str, Any]
    file: str

    def x(self, key: str) -> Any:
        ext = self.data.get("x-dockyard") or {}
        return ext.get(key) if isinstance(ext, dict) else None

    @property
    def named_volumes(self) -> list[dict[str, Any]]:
        return [v for v in self.data.get("volumes", []) if v.get("type") == "volume"
                and v.get("source")]

    @property
    def limits(self) -> dict[str, Any]:
        deploy = self.data.get("deploy") or {}
        return ((deploy.get("resources") or {}).get("limits") or {}) if isinstance(
            deploy, dict) else {}

    @property
    def replicas(self) -> int | None:
        deploy = self.data.get("deploy") or {}
        value = deploy.get("replicas") if isinstance(deploy, dict) else None
        return int(value) if value is not None else None

    def role_asked(self) -> str | None:
        role = self.x("role") or (self.data.get("labels") or {}).get("dockyard.role")
        if role is not None and role not in ROLES:
            raise fail(self.file, self.name, "x-dockyard.role", f"{role!r} is not a role; "
                       f"write one of {', '.join(ROLES)}")
        return role


class Translation:
    """One pass over the project; :meth:`run` returns (tables, Composition)."""

    def __init__(self, project: Project, settings: ComposeConfig, app: str,
                 config_dir: Path, environ: Mapping[str, str], toml: dict[str, Any]) -> None:
        self.project = project
        self.settings = settings
        self.app = app
        self.config_dir = config_dir
        self.environ = environ
        self.toml = toml
        self.file = project.name
        self.services = {n: _Service(n, s, self.file) for n, s in project.services.items()}
        self.out: dict[str, Any] = {}
        self.c = Composition(files=project.files, plans=[], notes=list(project.notes),
                             inactive=project.inactive)

    def note(self, service: str | None, key: str, text: str, level: str = "warning") -> None:
        self.c.notes.append(Note(service, key, text, level))

    # -- roles -----------------------------------------------------------------------------
    def routed(self) -> list[str]:
        asked = list(self.settings.web) or [str(n) for n in (
            [self.project.extensions["web"]] if isinstance(self.project.extensions.get("web"),
                                                          str)
            else self.project.extensions.get("web") or [])]
        asked = asked or [s.name for s in self.services.values() if s.role_asked() == "web"]
        for name in asked:
            if name not in self.services:
                known = ", ".join(sorted(self.services)) or "none"
                raise fail(self.file, None, "[compose] web", f"{name!r} is not an active "
                           f"service of the file (services: {known}); fix the name")
        if not asked:
            publishing = [s.name for s in self.services.values() if s.data.get("ports")
                          and not self._stateful(s)]
            if len(publishing) != 1:
                found = (f"several publish ports: {', '.join(publishing)}" if publishing
                         else "none publishes ports")
                raise fail(self.file, None, "[compose] web", f"which service is routed? "
                           f'{found}; write [compose] web = "SERVICE" in dockyard.toml')
            asked = publishing
        return asked

    def _stateful(self, s: _Service) -> bool:
        if s.role_asked() is not None:
            return s.role_asked() == "accessory"
        if "build" in s.data:
            return False
        image = str(s.data.get("image") or "")
        return bool(s.named_volumes) or detect_type(image) != "volume"

    def release_services(self, web: str) -> list[str]:
        found = [s.name for s in self.services.values() if s.role_asked() == "release"]
        for s in self.services.values():
            for dep, spec in (s.data.get("depends_on") or {}).items():
                if (spec or {}).get("condition") == "service_completed_successfully" and \
                        dep not in found and self.services[dep].role_asked() in (None, "release"):
                    found.append(dep)
        return found

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> tuple[dict[str, Any], Composition]:
        for s in self.services.values():
            for key in s.data:
                if key not in HONOURED:
                    self.note(s.name, key, "not honoured by Dockyard: left out")
            if (s.data.get("build") or {}).get("secrets"):
                raise fail(self.file, s.name, "build.secrets", "build secrets are not "
                           "supported; pass what the build needs as build args (not secret) "
                           "or fetch it at run time from the environment")
        web, *also = self.routed()
        releases = self.release_services(web)
        self._web(self.services[web])
        app_build = self.services[web].data.get("build")
        app_image = self.services[web].data.get("image")
        for name, s in self.services.items():
            if name == web:
                continue
            role = s.role_asked()
            if role == "skip":
                self.c.plans.append(Plan(name, "skip", "not deployed (x-dockyard role: skip)"))
            elif name in also:
                self._process(s, app_build, app_image)
                self._route(s)
            elif name in releases:
                self._release(s, app_build, app_image)
            elif role == "accessory" or (role is None and self._stateful(s)):
                self._accessory(s)
            else:
                self._process(s, app_build, app_image)
        self._networks()
        self._top_level()
        release = self.project.extensions.get("release")
        if release is not None and not self.out.get("release"):
            self.out["release"] = {"command": _command(release, self.file, "x-dockyard",
                                                       "release")}
        return self.out, self.c

    # -- the routed service ----------------------------------------------------------------
    def _web(self, s: _Service) -> None:
        d = s.data
        if d.get("network_mode") == "host":
            raise fail(self.file, s.name, "network_mode", "host networking cannot be routed "
                       "with zero downtime (two releases would share one port); remove it: "
                       "the router reaches the service on the app's network")
        if d.get("container_name"):
            raise fail(self.file, s.name, "container_name", "a routed service's containers "
                       "are named per release (two run during a switch); remove it")
        build: dict[str, Any] = {}
        if "build" in d:
            build = self._build(s)
        elif d.get("image"):
            build = {"image": str(d["image"])}
        else:
            raise fail(self.file, s.name, "build", "the routed service needs build: or image:")
        self.out["build"] = build
        web: dict[str, Any] = {}
        port = s.x("port") or self._port(s)
        if port:
            web["port"] = int(port)
        if s.x("domains"):
            web["domains"] = list(s.x("domains"))
        command = _command(d.get("command"), self.file, s.name, "command")
        extras = self._extras(s, "web")
        if command:
            web["command"] = extras.command(command)
        elif extras.entrypoint:
            web["command"] = extras.command(None) or None
            if not web["command"]:
                del web["command"]
        if s.replicas:
            web["replicas"] = s.replicas
        self._limits(s, web)
        path = s.x("healthcheck") or self._health_path(s)
        if path:
            web["healthcheck"] = path
        self.out["web"] = web
        env_plain, env_secret = self._env(s)
        self.out.setdefault("env", {}).update(env_plain)
        self._secrets(s, env_secret)
        if d.get("ports"):
            self.note(s.name, "ports", "not published: the router takes the traffic for the "
                      f"service's domains (to port {web.get('port', 'from [web]')})", "info")
        self.c.plans.append(Plan(s.name, "web", "routed (the web process): "
                                 + self._origin(build) + (f", port {web['port']}"
                                                          if "port" in web else ""), "web"))

    def _port(self, s: _Service) -> int | None:
        for entry in s.data.get("ports") or []:
            return int(entry["target"])
        for entry in s.data.get("expose") or []:
            try:
                return int(str(entry).split("/")[0].split("-")[0])
            except ValueError:
                continue
        return None

    def _health_path(self, s: _Service) -> str | None:
        check = s.data.get("healthcheck") or {}
        test = check.get("test") if isinstance(check, dict) else None
        text = " ".join(test) if isinstance(test, list) else str(test or "")
        found = re.search(r"https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0)(?::[0-9]+)?"
                          r"(/[A-Za-z0-9._~!$&*+,=:@%/?-]*)", text)
        if found:
            self.note(s.name, "healthcheck", f"the router checks {found.group(1)} over HTTP "
                      "instead of running the command", "info")
            return found.group(1)
        if test:
            self.note(s.name, "healthcheck", "not a URL Dockyard can request: the router "
                      "checks [web] healthcheck (default /up) instead; say which with "
                      "x-dockyard: { healthcheck: /path }")
        return None

    def _build(self, s: _Service) -> dict[str, Any]:
        b = s.data["build"]
        context = str(b.get("context", "."))
        if "://" in context or context.startswith("git@"):
            raise fail(self.file, s.name, "build.context", "a remote build context cannot be "
                       "streamed to the server; clone it and point build.context at the copy")
        out: dict[str, Any] = {"context": _relative(Path(context), self.config_dir)}
        if b.get("dockerfile"):
            out["dockerfile"] = str(b["dockerfile"])
        if b.get("args"):
            args = {k: v for k, v in b["args"].items() if v is not None}
            args.update({k: self.environ[k] for k, v in b["args"].items()
                         if v is None and k in self.environ})
            out["args"] = {k: str(v) for k, v in args.items()}
        if b.get("target"):
            out["target"] = str(b["target"])
        for key in sorted(set(b) - {"context", "dockerfile", "args", "target", "secrets"}):
            self.note(s.name, f"build.{key}", "not honoured by Dockyard's builder: left out")
        return out

    def _origin(self, build: dict[str, Any]) -> str:
        if "image" in build:
            return f"image {build['image']}"
        return f"built from {build.get('context', '.')}" + (
            f" ({build['dockerfile']})" if build.get("dockerfile") else "")

    def _route(self, s: _Service) -> None:
        """A routed service after the first: a process with a route of its own."""
        name = self.c.plans[-1].name
        domains = list(self.settings.domains.get(s.name) or s.x("domains") or [])
        if not domains:
            raise fail(self.file, s.name, "domains", "a second routed service needs host "
                       f'names of its own; write [compose.domains] {s.name} = '
                       f'["{s.name}.example.com"] in dockyard.toml')
        for domain in domains:
            try:
                values.domain(str(domain))
            except ValueError as exc:
                raise fail(self.file, s.name, "domains", str(exc)) from None
        port = s.x("port") or self._port(s)
        if not port:
            raise fail(self.file, s.name, "ports", "say which port it listens on (ports: or "
                       "expose:, or x-dockyard: { port: 8000 })")
        if s.data.get("network_mode") == "host":
            raise fail(self.file, s.name, "network_mode", "host networking cannot be routed "
                       "with zero downtime; remove it")
        self.c.notes = [n for n in self.c.notes if not (n.service == s.name and n.key == "ports")]
        self.c.routes[name] = Routed(int(port), [str(d) for d in domains],
                                     str(s.x("healthcheck") or self._health_path(s) or "/up"))
        self.c.plans[-1].role = "web"
        self.c.plans[-1].why = (f"routed (process {name!r}, on {', '.join(map(str, domains))}): "
                                f"port {port}")

    # -- processes ---------------------------------------------------------------------------
    def _name(self, s: _Service, kind: str) -> str:
        name = s.name.lower().replace("_", "-")
        try:
            (values.process_name if kind == "process" else values.accessory_name)(name)
        except ValueError as exc:
            raise fail(self.file, s.name, "name", f"{exc}; rename the service") from None
        return name

    def _process(self, s: _Service, app_build: Any, app_image: Any) -> None:
        d = s.data
        name = self._name(s, "process")
        extras = self._extras(s, name)
        if "build" in d and d["build"] != app_build:
            raise fail(self.file, s.name, "build", "builds another image than the routed "
                       "service; Dockyard builds one image per app: use the routed service's "
                       "build (a different command is fine), or an image:")
        if "build" not in d:
            if not d.get("image"):
                raise fail(self.file, s.name, "image", "needs build: or image:")
            if d["image"] != app_image:
                extras.image = str(d["image"])
        command = _command(d.get("command"), self.file, s.name, "command")
        if not command and not extras.entrypoint and extras.image is None and not \
                self.out["web"].get("command"):
            raise fail(self.file, s.name, "command", "would run the app's image with the "
                       "routed service's command; give it its own command: (e.g. a worker)")
        proc: dict[str, Any] = {"replicas": s.replicas or 1}
        full = extras.command(command)
        if full:
            proc["command"] = full
        self._limits(s, proc)
        if d.get("ports"):
            self.note(s.name, "ports", "not published: a process's next release starts before "
                      "the old one stops, and both cannot hold one port; mark the service "
                      "x-dockyard: { role: accessory } to publish it")
        if d.get("network_mode"):
            self.note(s.name, "network_mode", "left out: every process joins the app's network")
        if d.get("container_name"):
            self.note(s.name, "container_name", "left out: containers are named per release")
        restart = str(d.get("restart") or "")
        if restart in ("no", "on-failure"):
            self.note(s.name, "restart", f"{restart!r}: Dockyard keeps processes running "
                      "(restart unless stopped); a one-shot task belongs in x-dockyard.release "
                      "or [cron]")
        if d.get("healthcheck"):
            self.note(s.name, "healthcheck", "Docker runs it, but a deploy checks processes "
                      "by their staying up", "info")
        plain, secret = self._env(s)
        self._secrets(s, secret)
        app_env = self.out.setdefault("env", {})
        extras.env = {k: v for k, v in plain.items() if app_env.get(k) != v}
        self.out.setdefault("processes", {})[name] = proc
        self.c.plans.append(Plan(s.name, "process", (f"process {name!r}" if name != s.name
                                                     else "process") + (
            f" (image {extras.image})" if extras.image else " (the app's image)")
            + (f", {proc['replicas']} replicas" if proc["replicas"] > 1 else ""), name))

    def _extras(self, s: _Service, name: str) -> Extras:
        d = s.data
        extras = self.c.extras.setdefault(name, Extras())
        extras.entrypoint = _command(d.get("entrypoint"), self.file, s.name, "entrypoint")
        extras.labels = {k: str(v) for k, v in (d.get("labels") or {}).items()
                         if v is not None and not k.startswith("dockyard.")}
        extras.user = str(d["user"]) if d.get("user") is not None else None
        extras.workdir = str(d["working_dir"]) if d.get("working_dir") else None
        for volume in d.get("volumes") or []:
            target = volume.get("target")
            mode = ":ro" if volume.get("read_only") else ""
            if volume.get("type") == "volume" and volume.get("source"):
                server = f"{self.app}-{volume['source']}"
                extras.volumes.append(f"{server}:{target}{mode}")
                if server not in self.c.volumes:
                    self.c.volumes.append(server)
            elif volume.get("type") == "bind":
                self.note(s.name, "volumes", f"{_shown_path(volume.get('source'))}:{target}: "
                          "a directory of this machine is not mounted on the server (the "
                          "image carries the code); left out")
            else:
                self.note(s.name, "volumes", f"{target}: an anonymous volume is not kept "
                          "across releases; name it to keep its data")
        grace = d.get("stop_grace_period")
        if grace is not None:
            try:
                seconds = parse_duration(str(grace))
            except ValueError as exc:
                raise fail(self.file, s.name, "stop_grace_period", str(exc)) from None
            deploy = self.out.setdefault("deploy", {})
            if seconds > deploy.get("stop_timeout", 0):
                deploy["stop_timeout"] = f"{seconds:g}s"
        return extras

    def _limits(self, s: _Service, table: dict[str, Any]) -> None:
        limits = s.limits
        if limits.get("memory") is not None:
            table["memory"] = _memory(limits["memory"])
        if limits.get("cpus") is not None:
            table["cpus"] = float(limits["cpus"])

    def _env(self, s: _Service) -> tuple[dict[str, str], dict[str, str]]:
        plain, secret = _secret_or_plain(s.data.get("environment") or {}, self.environ)
        for path in s.data.get("env_file") or []:
            file = Path(path)
            if not file.is_file():
                raise fail(self.file, s.name, "env_file", f"{_shown_path(path)}: no such file")
            for key, value in read_dotenv(file).items():
                if key not in plain and key not in secret:
                    secret[key] = value
        return plain, secret

    def _secrets(self, s: _Service, secret: dict[str, str]) -> None:
        for key, value in secret.items():
            old = self.c.secrets.get(key)
            if old is not None and old != value:
                raise fail(self.file, s.name, f"environment.{key}", "another service gives "
                           "it another value; both reach the server as one secret of the app: "
                           "use one value, or another name")
            self.c.secrets[key] = value

    # -- the release command ---------------------------------------------------------------
    def _release(self, s: _Service, app_build: Any, app_image: Any) -> None:
        d = s.data
        if ("build" in d and d["build"] != app_build) or ("build" not in d and d.get(
                "image") != app_image):
            raise fail(self.file, s.name, "build", "a release task runs in the app's image; "
                       "use the routed service's build or image")
        command = _command(d.get("command"), self.file, s.name, "command")
        extras = self._extras(s, "release")
        command = extras.command(command)
        if not command:
            raise fail(self.file, s.name, "command", "write the command the release task runs")
        if self.out.get("release") or (self.toml.get("release") or {}).get("command"):
            self.note(s.name, "", "a second release task: [release] in dockyard.toml wins")
        else:
            self.out["release"] = {"command": command}
        plain, secret = self._env(s)
        self._secrets(s, secret)
        app_env = self.out.setdefault("env", {})
        extras.env = {k: v for k, v in plain.items() if app_env.get(k) != v}
        self.c.plans.append(Plan(s.name, "release", "the release command (runs once before "
                                 "the switch)", "release"))

    # -- accessories -------------------------------------------------------------------------
    def _accessory(self, s: _Service) -> None:
        d = s.data
        name = self._name(s, "accessory")
        if "build" in d or not d.get("image"):
            raise fail(self.file, s.name, "build", "a stateful service (named volumes) runs "
                       "an image Dockyard boots once; give it image:, or mark it "
                       "x-dockyard: { role: process }")
        acc: dict[str, Any] = {"image": str(d["image"])}
        command = _command(d.get("command"), self.file, s.name, "command")
        if command:
            acc["cmd"] = command
        if d.get("entrypoint"):
            self.note(s.name, "entrypoint", "not honoured for an accessory: left out")
        plain, secret = self._env(s)
        if plain:
            acc["env"] = plain
        if secret:
            acc["secrets"] = sorted(secret)
            self._secrets(s, secret)
        volumes, files = [], []
        for volume in d.get("volumes") or []:
            target, ro = volume.get("target"), ":ro" if volume.get("read_only") else ""
            if volume.get("type") == "volume" and volume.get("source"):
                volumes.append(f"{volume['source']}:{target}{ro}")
            elif volume.get("type") == "bind" and Path(str(volume.get("source"))).is_file():
                files.append(f"{_relative(Path(str(volume['source'])), self.config_dir)}:"
                             f"{target}")
            elif volume.get("type") == "bind":
                self.note(s.name, "volumes", f"{_shown_path(volume.get('source'))}: a directory "
                          "of this machine is not mounted on the server; use a named volume")
            else:
                self.note(s.name, "volumes", f"{target}: an anonymous volume: left out (postgres "
                          "and redis get a data volume of their own; name others)")
        if volumes:
            acc["volumes"] = volumes
        if files:
            acc["files"] = files
        ports = d.get("ports") or []
        if ports:
            first = ports[0]
            published = first.get("published") or str(first["target"])
            ip = first.get("host_ip")
            acc["port"] = (f"{ip}:{published}:{first['target']}" if ip and ip != "127.0.0.1"
                           else f"{published}:{first['target']}")
            if not ip:
                self.note(s.name, "ports", f"{published}:{first['target']} is published on the "
                          "server's 127.0.0.1 only (write \"0.0.0.0:" + f"{published}:"
                          f"{first['target']}\" to publish it on every address)")
            if len(ports) > 1:
                self.note(s.name, "ports", "only the first port is published")
        self._limits(s, acc)
        if s.x("backup"):
            acc["backup"] = s.x("backup")
        for key in ("healthcheck", "labels", "user", "working_dir", "container_name"):
            if d.get(key):
                self.note(s.name, key, "not honoured for an accessory (Dockyard checks "
                          "postgres and redis its own way): left out", "info")
        self.out.setdefault("accessories", {})[name] = acc
        kind = detect_type(acc["image"])
        kept = ", ".join(f"{self.app}-{v.split(':')[0]}" for v in volumes)
        self.c.plans.append(Plan(s.name, "accessory", f"accessory ({kind}, {acc['image']})"
                                 + (f", data in {kept}" if kept else "")
                                 + ": booted once, never restarted by a deploy", name))

    # -- the project as a whole -------------------------------------------------------------
    def _networks(self) -> None:
        used = {n for s in self.services.values() for n in (s.data.get("networks") or {})}
        if len(used | set(self.project.networks)) > 1:
            self.note(None, "networks", "every service joins one network of the app "
                      f"({self.app}) and reaches the others by name", "info")

    def _top_level(self) -> None:
        for key in ("secrets", "configs"):
            if getattr(self.project, key) or any(s.data.get(key) for s in
                                                 self.services.values()):
                self.note(None, key, "not mounted: put a secret's value in the environment "
                          "(.env, or dockyard env set NAME -) and a config file in the image "
                          "or an accessory's files")


def _relative(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(path, base.resolve())


def _shown_path(path: Any) -> str:
    return values.shown(str(path), 80)[1:-1]


def compose(toml: dict[str, Any], settings: ComposeConfig, config_dir: Path,
            environ: Mapping[str, str] | None = None) -> tuple[dict[str, Any], Composition]:
    """Read the compose file(s) [compose] names; return the tables they make (to go under
    dockyard.toml's own) and the Composition."""
    import os

    hosts = (toml.get("server") or {}).get("hosts") or []
    if isinstance(hosts, list) and len(hosts) > 1:
        raise fail(settings.paths[0], None, "[compose]", "a compose file deploys to one "
                   "server for now; write [server] host, or describe the app in dockyard.toml "
                   "to run it on several (docs/cluster.md)")
    files = [(config_dir / p) for p in settings.paths]
    environ = {**read_dotenv(files[0].parent / ".env"),
               **(os.environ if environ is None else environ)}
    project = load(files, settings.profiles, environ)
    app = str((toml.get("app") or {}).get("name") or "app")
    return Translation(project, settings, app, config_dir, environ, toml).run()


def guess_web(project: Project) -> str | None:
    """For `init --compose`: the one service that publishes ports, else the first that
    builds, else the first that publishes ports whatever it is."""
    t = Translation(project, ComposeConfig(), "app", project.directory, {}, {})
    publishing = [s.name for s in t.services.values() if s.data.get("ports")
                  and not t._stateful(s)]
    if len(publishing) == 1:
        return publishing[0]
    building = [s.name for s in t.services.values() if "build" in s.data
                and s.data.get("ports")] or [s.name for s in t.services.values()
                                              if "build" in s.data]
    first = building or publishing
    return first[0] if first else None
