"""The ``dockyard.toml`` schema.

These models are the documentation: every field has a type, a default and a description,
and ``docs/config.md`` is generated from them. Unknown keys are errors, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dockyard import values
from dockyard.config.duration import duration

if TYPE_CHECKING:
    from dockyard.compose.translate import Composition
from dockyard.values import (
    AccessoryName,
    ArgvWord,
    Cpus,
    CronSchedule,
    Domain,
    EnvKey,
    ImageRef,
    LocatedError,
    Memory,
    ProcessName,
)


def _command(value: Any) -> Any:
    """Commands may be written as a list (exec form) or a string (split like a shell)."""
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split like a shell command ({exc}); write a list, "
                             'e.g. ["python", "manage.py", "migrate"]') from None
    if isinstance(value, list) and not value:
        raise ValueError('must not be empty; write e.g. ["python", "manage.py", "migrate"]')
    return value


def _scalar_str(value: Any) -> Any:
    """Env values may be written as numbers or booleans; Docker sees text anyway."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def check_env(value: dict[str, str]) -> dict[str, str]:
    """Values on one line (env files cannot carry more), and no NUL."""
    for key, val in value.items():
        try:
            values.env_value(key, val)
        except ValueError as exc:
            raise LocatedError((key,), str(exc)) from None
    return value


def _path(value: str) -> str:
    """A file path: one argv word, no NUL."""
    return values.argv_word(value)


def _health_path(value: str) -> str:
    # it travels in a Runtime API line (spaces separate words, ';' separates commands) and
    # in an HTTP request line
    if not re.fullmatch(r"/[A-Za-z0-9._~!$&'()*+,=:@%/?-]{0,1000}", value):
        raise ValueError(f"{values.shown(value)} is not a path; write a path such as \"/up\" "
                         "(no spaces or semicolons)")
    return value


def _bind_address(value: str) -> str:
    """An IPv4 address the router's ports are published on."""
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{values.shown(value)} is not an IPv4 address; write \"0.0.0.0\" "
                         "(every address) or \"127.0.0.1\" (this machine only)") from None


def _email(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}", value):
        raise ValueError(f"{values.shown(value)} is not an email address; write e.g. "
                         '"you@example.com"')
    return value


def _url(value: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9._~:/?#@!$&'()*+,;=%\[\]-]{1,2000}", value):
        raise ValueError(f"{values.shown(value)} is not an http(s) URL; write e.g. "
                         '"https://acme-v02.api.letsencrypt.org/directory"')
    return value


Command = Annotated[list[ArgvWord], BeforeValidator(_command)]
EnvValue = Annotated[str, BeforeValidator(_scalar_str), AfterValidator(values.argv_word)]
Path = Annotated[str, AfterValidator(_path)]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class AppConfig(Section):
    """The app's identity on the server."""

    name: values.AppName = Field(
        description="The app's name: lowercase letters, digits and dashes, starting with a "
        "letter and not ending with a dash, at most 40 characters. Unique on the server; it "
        "prefixes every container, network and image of the app."
    )


class ServerConfig(Section):
    """Where the app runs."""

    host: str = Field(
        description='The server: "ssh://user@host:port" (user defaults to root and port to '
        '22; a name from ~/.ssh/config works too, e.g. "ssh://myvps"), or "local" for the '
        "Docker engine on this machine."
    )
    hosts: list[str] = Field(
        default_factory=list,
        description='Several servers, e.g. ["ssh://root@a", "ssh://root@b", "ssh://root@c"]: '
        "the app runs on all of them through Docker Swarm (`dockyard cluster init` first; "
        "see docs/cluster.md). Write host or hosts, not both; one entry behaves like host.",
    )
    connect_timeout: duration("1s", "5m") = Field(  # type: ignore[valid-type]
        default=5.0,
        description="How long to wait for the SSH connection before saying the server is "
        "unreachable.",
    )

    @model_validator(mode="before")
    @classmethod
    def _primary(cls, data: Any) -> Any:
        """``host`` is always set: the first of ``hosts`` (where the app's records live)."""
        if not isinstance(data, dict) or "hosts" not in data:
            return data
        hosts = data["hosts"]
        if not isinstance(hosts, list):
            raise ValueError('hosts is a list of servers; write e.g. hosts = '
                             '["ssh://root@203.0.113.5", "ssh://root@203.0.113.6"]')
        if hosts and not isinstance(hosts[0], str):
            return data  # the field's own validation says what is wrong
        if not hosts:
            if "host" in data:
                return data  # `dockyard config` prints hosts = [] next to host
            raise ValueError('hosts lists no server; write e.g. hosts = '
                             '["ssh://root@203.0.113.5", "ssh://root@203.0.113.6"]')
        if "host" in data and data["host"] != hosts[0]:
            raise ValueError("write either host (one server) or hosts (several), not both")
        return {**data, "host": hosts[0]}

    @field_validator("host", mode="before")
    @classmethod
    def _host(cls, value: Any) -> Any:
        from dockyard.host.spec import HostSpec

        if isinstance(value, str):
            HostSpec.parse(value)  # raises ValueError with what is accepted
        return value

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        from dockyard.host.spec import HostSpec

        seen: set[str] = set()
        for text in value:
            spec = HostSpec.parse(text)
            if spec.kind == "local":
                raise ValueError('"local" cannot be one of several hosts; list ssh:// '
                                 "addresses")
            if spec.hostname in seen:
                raise ValueError(f"{values.shown(spec.hostname)} is listed twice")
            seen.add(spec.hostname)
        return value

    @property
    def all_hosts(self) -> list[str]:
        """Every server the app runs on, the primary first."""
        return list(self.hosts) if self.hosts else [self.host]

    @property
    def cluster(self) -> bool:
        return len(self.all_hosts) > 1


class BuildConfig(Section):
    """How the app's image is made."""

    context: Path = Field(
        default=".",
        description="Build context directory, relative to dockyard.toml. The files it "
        "holds (honouring .dockerignore) are what the builder sees.",
    )
    builder: Literal["server", "local"] = Field(
        default="server",
        description='Where the image is built. "server": the context is streamed over SSH '
        'and built there (no Docker needed on this machine). "local": built by the Docker '
        "engine on this machine, for the server's platform, and only the layers the server "
        "lacks travel, over the same SSH connection (no registry account, no open port): "
        "for servers too small to build, or to keep build tools off them.",
    )
    registry_image: ImageRef = Field(
        default="registry:2",
        description='builder = "local": the registry image run on this machine (bound to '
        "127.0.0.1 while a command ships, then stopped; its volume keeps the layers) that the "
        "server pulls from through the SSH connection.",
    )
    dockerfile: Path = Field(
        default="Dockerfile", description="Dockerfile path, relative to the context."
    )
    args: dict[EnvKey, EnvValue] = Field(
        default_factory=dict,
        description="Build arguments (--build-arg). Not for secrets: build args are stored "
        "in the image's history.",
    )
    target: ArgvWord | None = Field(
        default=None, description="The Dockerfile stage to build (--target), e.g. \"prod\"."
    )
    image: ImageRef | None = Field(
        default=None,
        description='Use this image instead of building, e.g. "ghcr.io/me/app:1.2" (or '
        "per deploy: dockyard deploy --image REF). Used as is when the server has it, pulled "
        "otherwise (with [registry] credentials when the image is on that registry).",
    )


def _secret_source(value: Any) -> Any:
    """A password is never a value in the file: { env = "NAME" } or { command = "..." }."""
    if isinstance(value, str):
        raise ValueError('must not be written in the file; write password = { env = "NAME" } '
                         '(from this machine\'s environment) or password = { command = '
                         '"pass show registry" } (a command that prints it)')
    return value


class SecretSource(Section):
    """Where a secret comes from on this machine: never the file itself."""

    env: EnvKey | None = Field(default=None, description="An environment variable's name.")
    command: Command | None = Field(
        default=None, description="A command whose output (first line) is the secret.")

    @model_validator(mode="after")
    def _one(self) -> SecretSource:
        if (self.env is None) == (self.command is None):
            raise ValueError('write exactly one of env = "NAME" or command = "..."')
        return self


class RegistryConfig(Section):
    """Credentials for pulling [build] image (or deploy --image) from a private registry.
    The server logs in through stdin with a temporary Docker config, removed after the pull:
    the password is in no argv, log, --dry-run output or file left on the server."""

    server: values.RegistryHost = Field(
        description='The registry\'s host (and port), e.g. "ghcr.io" or "registry.example.com'
        ':5000"; images on other registries are pulled without logging in.')
    username: EnvValue = Field(description="The user to log in as.")
    password: Annotated[SecretSource, BeforeValidator(_secret_source)] = Field(
        description='{ env = "NAME" } or { command = "pass show ghcr" }, read on this machine '
        "at deploy time.")


class WebConfig(Section):
    """The routed process: it receives HTTP traffic through the router."""

    port: Port = Field(
        default=8080,
        description="Port the app listens on inside its container. Nothing is published on "
        "the server: the router reaches it over the app's Docker network.",
    )
    domains: list[Domain] = Field(
        default_factory=list,
        description='Host names routed to this app, e.g. ["hello.example.com"]. Names under '
        ".localhost work for local testing.",
    )
    tls: bool = Field(
        default=True, strict=True,
        description="Serve the domains over HTTPS with certificates obtained (and renewed) "
        "automatically over ACME, and redirect HTTP to HTTPS once a certificate is there. "
        "Names under .localhost and IP addresses are always served over plain HTTP.",
    )
    healthcheck: str = Field(
        default="/up",
        description="Path the router requests to decide whether a container is healthy; a "
        "2xx or 3xx answer means healthy. Sent with the first domain as Host header.",
    )
    healthcheck_interval: duration("100ms", "1h") = Field(  # type: ignore[valid-type]
        default=1.0, description="Time between two health checks of a container."
    )
    healthcheck_timeout: duration("100ms", "1h") = Field(  # type: ignore[valid-type]
        default=2.0, description="How long one health check may take before it counts as failed."
    )
    healthcheck_give_up: duration("1s", "1d") = Field(  # type: ignore[valid-type]
        default=60.0,
        description="How long a deploy waits for a new container to become healthy before it "
        "gives up, removes it and leaves the old release serving.",
    )
    command: Command | None = Field(
        default=None,
        description="Command for the web process; the image's CMD when absent.",
    )
    response_timeout: duration("1s", "1h") = Field(  # type: ignore[valid-type]
        default=30.0,
        description="With several [server] hosts: how long a GET or HEAD may wait for a "
        "task's first answer before the router retries it on another task (a node that "
        "vanished answers nothing); other requests are never retried. One server: unused.",
    )
    replicas: int | None = Field(
        default=None, strict=True, ge=1, le=16,
        description="How many web containers serve at once; the router balances over them "
        "and a deploy replaces them all with no failed request. One on one server when "
        "absent; with several [server] hosts, one per node.",
    )
    memory: Memory | None = Field(
        default=None,
        description='Memory limit of each web container, e.g. "512m" or "1g" (Docker\'s '
        "--memory); a container that exceeds it is killed, and status and logs say so.",
    )
    cpus: Cpus | None = Field(
        default=None,
        description="CPU limit of each web container in cores, e.g. 0.5 (Docker's --cpus).",
    )

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for domain in value:
            if domain in seen:
                raise ValueError(f"{values.shown(domain)} is listed twice")
            seen.add(domain)
        return value

    @field_validator("healthcheck")
    @classmethod
    def _healthcheck(cls, value: str) -> str:
        return _health_path(value)


def _process(value: Any) -> Any:
    """``worker = ["python", "worker.py"]`` is short for ``[processes.worker] command = ...``."""
    return {"command": value} if isinstance(value, list | str) else value


class ProcessConfig(Section):
    """An extra long-running process of the app's image, not routed (a worker, a queue)."""

    command: Command | None = Field(
        default=None, description='What it runs, e.g. ["python", "worker.py"] (required, '
        "unless a compose service of its own image says it).")
    replicas: int = Field(
        default=1, strict=True, ge=1, le=16,
        description="How many containers of it run at once.")
    memory: Memory | None = Field(
        default=None, description='Memory limit of each container, e.g. "256m".')
    cpus: Cpus | None = Field(
        default=None, description="CPU limit of each container in cores, e.g. 0.5.")


ProcessEntry = Annotated[ProcessConfig, BeforeValidator(_process)]


class CronJobConfig(Section):
    """A scheduled job: a one-off container of the live release, run on the server."""

    schedule: CronSchedule = Field(
        description='When, in the server\'s time zone (or timezone): five cron fields such as '
        '"*/10 * * * *", or hourly, daily (03:00), weekly, monthly, yearly ("@hourly" too).')
    command: Command = Field(description='What runs, e.g. ["python", "manage.py", "clearsessions"].')
    timeout: duration("1s", "7d") = Field(  # type: ignore[valid-type]
        default=3600.0,
        description="A run still going after this long is stopped (and counted as failed).")
    timezone: Annotated[str, BeforeValidator(values.timezone)] | None = Field(
        default=None,
        description='The time zone the schedule is read in, e.g. "Europe/Paris"; the '
        "server's when absent.")
    keep: int = Field(
        default=20, ge=1, le=1000, strict=True,
        description="How many runs keep their output and exit code on the server.")


class NotifyConfig(Section):
    """Where deploy, rollback, backup and job events are sent (docs/day-two.md)."""

    webhook: Annotated[str, AfterValidator(_url)] | None = Field(
        default=None,
        description='A JSON body is POSTed here, e.g. "https://hooks.example.com/dockyard": '
        "by this machine for deploys and rollbacks, by the server for what happens without "
        "it (a scheduled job or backup failed). Its address is kept on the server, mode 0600.")
    command: Command | None = Field(
        default=None,
        description='Run on this machine for deploys and rollbacks, with the same JSON on '
        'stdin, e.g. ["notify-send", "dockyard"].')
    timeout: duration("1s", "1m") = Field(  # type: ignore[valid-type]
        default=5.0,
        description="How long a webhook or command may take; a deploy never waits longer "
        "for them, and never fails because of them.")


class ReleaseConfig(Section):
    """The release task: run once per deploy, before the new containers start."""

    command: Command | None = Field(
        default=None,
        description='Run once in a one-off container of the new image, with the app\'s env '
        'and network, e.g. ["python", "manage.py", "migrate"]. A non-zero exit stops the '
        "deploy and changes nothing else.",
    )


class DeployConfig(Section):
    """How the switch from one release to the next happens."""

    drain_timeout: duration(0, "1d") = Field(  # type: ignore[valid-type]
        default=30.0,
        description="How long the old container keeps finishing in-flight requests after the "
        "router stops sending it new ones.",
    )
    stop_timeout: duration(0, "1h") = Field(  # type: ignore[valid-type]
        default=10.0,
        description="How long a container gets between SIGTERM and SIGKILL when it is stopped.",
    )
    keep_releases: int = Field(
        default=5, ge=1, le=100, strict=True,
        description="How many releases keep their image on the server, for rollback; older "
        "images are pruned.",
    )


class ProxyConfig(Section):
    """Server-wide router settings, shared by every app on the server.

    The first deploy to a server records them there; a file that leaves a key out takes the
    server's current value; changing one is explicit: ``dockyard router apply``.
    """

    bind: Annotated[str, AfterValidator(_bind_address)] = Field(
        default="0.0.0.0",
        description='The server address the router listens on: "0.0.0.0" (every address, '
        'IPv6 too: the default), or "127.0.0.1" when an existing web server on the same '
        "machine forwards to it (see `dockyard proxy snippet`).",
    )
    http_port: Port = Field(default=80, description="Port on the server for plain HTTP.")
    https_port: Port = Field(default=443, description="Port on the server for HTTPS.")
    router_image: ImageRef = Field(
        default="haproxy:2.8",
        description="HAProxy image for the dockyard-router container (HAProxy 2.6 or newer).",
    )
    acme_email: Annotated[str, AfterValidator(_email)] | None = Field(
        default=None,
        description="Contact address for the ACME account (Let's Encrypt sends expiry warnings "
        "there). Optional.",
    )
    acme_ca: Annotated[str, AfterValidator(_url)] = Field(
        default="https://acme-v02.api.letsencrypt.org/directory",
        description="ACME directory URL certificates are ordered from, as the ACME container on "
        "the server reaches it. Default: Let's Encrypt production.",
    )
    acme_staging: bool = Field(
        default=False, strict=True,
        description="Use Let's Encrypt's staging CA (untrusted certificates, generous rate "
        "limits): for trying things out. Overrides acme_ca.",
    )
    acme_ca_root: Path | None = Field(
        default=None,
        description="A CA certificate file on this machine that the ACME client must trust to "
        "talk to acme_ca (for test CAs such as Pebble); uploaded by `dockyard router apply`.",
    )
    acme_image: ImageRef = Field(
        default="goacme/lego:v4.19",
        description="Image of the ACME client (lego) that obtains and renews certificates on "
        "the server; it needs lego, sh and nc (the official goacme/lego image has them).",
    )
    cert_wait: duration(0, "1h") = Field(  # type: ignore[valid-type]
        default=60.0,
        description="How long a deploy waits for a new domain's first certificate before it "
        "goes on serving HTTP with a warning (issuing keeps being retried on the server).",
    )
    hsts: bool = Field(
        default=False, strict=True,
        description="Send Strict-Transport-Security (one year) on HTTPS answers. Browsers then "
        "refuse plain HTTP for the name: enable it once HTTPS works.",
    )
    tunnel_timeout: duration("1s", "7d") = Field(  # type: ignore[valid-type]
        default=3600.0,
        description="How long an idle websocket (or other upgraded connection) stays open.",
    )
    tools_image: ImageRef = Field(
        default="docker:27-cli",
        description="Small image for helper containers: scheduled backups (it needs busybox's "
        "crond, sh and tar and a docker client, as the official docker:cli image has), volume "
        "backups, file copies.",
    )

    @property
    def behind_proxy(self) -> bool:
        """Listening on loopback only: an existing web server in front forwards to it."""
        return ipaddress.IPv4Address(self.bind).is_loopback

    @model_validator(mode="after")
    def _ports_differ(self) -> ProxyConfig:
        if self.http_port == self.https_port:
            raise ValueError(
                f"http_port and https_port are both {self.http_port}; give them different ports"
            )
        return self


ACCESSORY_TYPES = ("postgres", "redis", "volume")
SCHEDULE_WORDS = values.SCHEDULE_WORDS
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,200}")
_CONTAINER_PATH = re.compile(r"/[^:,\x00]{0,4000}")


#: Repository names (the last path component) whose images are PostgreSQL or Redis: an exact
#: match, so a misspelled "postgress" is not taken for PostgreSQL (its pull fails instead,
#: saying so). Anything else is "volume" unless `type` says otherwise.
KNOWN_TYPES = {
    "postgres": "postgres", "postgresql": "postgres", "postgis": "postgres",
    "redis": "redis", "redis-stack": "redis", "redis-stack-server": "redis",
}


def detect_type(image: str) -> str:
    """postgres, redis or volume, from an image name such as "postgres:16" or
    "ghcr.io/me/redis-stack:7": the last path component, before its tag, exactly."""
    base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0].lower()
    return KNOWN_TYPES.get(base, "volume")


def cron_schedule(value: str) -> str:
    """A cron line's five time fields, from cron syntax or hourly/daily/weekly."""
    return values.cron_schedule(value)


class BackupConfig(Section):
    """Scheduled backups of an accessory, taken on the server by a small cron container."""

    schedule: CronSchedule = Field(
        description='When: "hourly", "daily" (03:00 UTC), "weekly", or cron syntax such as '
        '"30 2 * * *" (UTC).'
    )
    keep: int = Field(
        default=7, ge=1, le=1000, strict=True,
        description="How many scheduled backups stay; older scheduled ones are deleted after "
        "each new one. Manual and safety backups are never deleted automatically.",
    )
    allow_stop: bool = Field(
        default=False, strict=True,
        description="Required for accessories of type volume: their backup stops the "
        "accessory while its volumes are copied.",
    )


class AccessoryConfig(Section):
    """A service next to the app (database, cache, ...): started once, kept running, never
    touched by app deploys, its data in volumes that outlive it."""

    image: ImageRef = Field(description='The image, e.g. "postgres:16" or "redis:7".')
    type: Literal["postgres", "redis", "volume"] | None = Field(
        default=None,
        description="How it is checked, backed up and restored: postgres (pg_isready, "
        "pg_dump), redis (PING, RDB snapshot) or volume (its HEALTHCHECK, a tar of its volumes "
        "taken while stopped). When absent, detected from the image's repository name, "
        "exactly: postgres, postgresql, postgis; redis, redis-stack, redis-stack-server; "
        "anything else is volume.",
    )
    cmd: Command | None = Field(
        default=None, description="Command to run instead of the image's CMD."
    )
    env: dict[EnvKey, EnvValue] = Field(
        default_factory=dict,
        description='Plain environment variables, e.g. { POSTGRES_USER = "app" }.',
    )
    secrets: list[EnvKey] = Field(
        default_factory=list,
        description='Names of keys set with `dockyard env set` that this accessory receives, '
        'e.g. ["POSTGRES_PASSWORD"]; it gets no other secret.',
    )
    volumes: list[str] = Field(
        default_factory=list,
        description='"NAME:/path" (a Docker volume, named <app>-NAME on the server) or '
        '"/server/path:/path" (a directory on the server); add ":ro" for read-only. '
        "postgres and redis get a data volume (<app>-<accessory>-data) when none is given.",
    )
    files: list[str] = Field(
        default_factory=list,
        description='Small files uploaded before start, "local/path:/path/in/container", the '
        "local path relative to dockyard.toml; mounted read-only.",
    )
    port: str | None = Field(
        default=None,
        description='Publish a port on the server\'s 127.0.0.1 only (for an SSH tunnel), '
        'e.g. "5432" or "15432:5432" ("0.0.0.0:5432:5432" publishes it on every address). '
        "The app never needs it: it reaches the accessory by name on its own network.",
    )
    backup: BackupConfig | None = Field(
        default=None,
        description='Scheduled backups, e.g. { schedule = "daily", keep = 7 }.',
    )
    memory: Memory | None = Field(
        default=None, description='Memory limit, e.g. "1g" (Docker\'s --memory).')
    cpus: Cpus | None = Field(
        default=None, description="CPU limit in cores, e.g. 1.5 (Docker's --cpus).")

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        if value is None:
            return value
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        parts = text.split(":") if isinstance(text, str) else []
        try:
            if len(parts) == 3:  # an address of the server: "0.0.0.0:5432:5432"
                ipaddress.IPv4Address(parts.pop(0))
            if not 1 <= len(parts) <= 2:
                raise ValueError
            for part in parts:
                values.port(part)
        except ValueError:
            raise ValueError(f'{values.shown(value)} is not a port; write e.g. "5432", '
                             '"15432:5432" or, to publish beyond 127.0.0.1, '
                             '"0.0.0.0:5432:5432"') from None
        return text

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        return check_env(value)

    @field_validator("volumes")
    @classmethod
    def _volumes(cls, value: list[str]) -> list[str]:
        for item in value:
            parts = item.split(":")
            mode_ok = len(parts) == 2 or (len(parts) == 3 and parts[2] in ("ro", "rw"))
            if not mode_ok or not _CONTAINER_PATH.fullmatch(parts[1]) or not (
                    _CONTAINER_PATH.fullmatch(parts[0]) or _VOLUME_NAME.fullmatch(parts[0])):
                raise ValueError(
                    f'{values.shown(item)} is not a volume; write "NAME:/path/in/container" or '
                    '"/path/on/server:/path/in/container" (optionally ":ro")'
                )
        return value

    @field_validator("files")
    @classmethod
    def _files(cls, value: list[str]) -> list[str]:
        for item in value:
            local, sep, remote = item.rpartition(":")
            if not sep or not local or "\0" in local or not _CONTAINER_PATH.fullmatch(remote):
                raise ValueError(
                    f'{values.shown(item)} is not a file mapping; write '
                    '"local/path:/path/in/container"'
                )
        return value

    @property
    def kind(self) -> str:
        """The accessory's type, given or detected from the image."""
        return self.type or detect_type(self.image)

    @model_validator(mode="after")
    def _backup_stop(self) -> AccessoryConfig:
        if self.backup is not None and self.kind == "volume" and not self.backup.allow_stop:
            raise ValueError(
                "a scheduled backup of a volume accessory stops it while its volumes are "
                "copied; add allow_stop = true to the backup table to accept that"
            )
        return self


def _one_or_more(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ComposeConfig(Section):
    """Deploy from a docker-compose file: it stays the source of truth (docs/compose.md). Its
    routed service is the web process ([web] applies to it), stateful services become
    accessories, the others processes; each deploy reads the file again."""

    file: Path = Field(
        default="docker-compose.yml",
        description="The compose file, relative to dockyard.toml.",
    )
    files: list[Path] = Field(
        default_factory=list,
        description='Several files merged in order, as docker compose -f a.yml -f b.yml '
        'does, e.g. ["docker-compose.yml", "docker-compose.prod.yml"]; replaces file.',
    )
    web: Annotated[list[str], BeforeValidator(_one_or_more)] = Field(
        default_factory=list,
        description='The routed service, e.g. "app" (or x-dockyard: { role: web } on the '
        "service, or a label dockyard.role: web). When absent: the one service that "
        'publishes ports. Several: ["app", "admin"], each on its own domains, switched '
        "together.",
    )
    profiles: list[ArgvWord] = Field(
        default_factory=list,
        description="Profiles to enable, as docker compose --profile does (COMPOSE_PROFILES "
        "in the environment adds to them).",
    )
    domains: dict[str, list[Domain]] = Field(
        default_factory=dict,
        description='The host names of each routed service after the first, e.g. { admin = '
        '["admin.example.com"] } (the first takes [web] domains).',
    )

    @property
    def paths(self) -> list[str]:
        return list(self.files) or [self.file]


class Config(Section):
    """A whole dockyard.toml."""

    app: AppConfig = Field(description="The app's identity.")
    server: ServerConfig = Field(description="Where the app runs.")
    compose: ComposeConfig | None = Field(
        default=None, description="Deploy the services of a docker-compose file.")
    build: BuildConfig = Field(default_factory=BuildConfig, description="How the image is made.")
    registry: RegistryConfig | None = Field(
        default=None, description="Credentials for a private registry the images come from.")
    web: WebConfig = Field(default_factory=WebConfig, description="The routed web process.")
    processes: dict[ProcessName, ProcessEntry] = Field(
        default_factory=dict,
        description='Extra long-running processes of the same image, not routed, e.g. '
        'worker = ["python", "worker.py"], or a table [processes.worker] with command, '
        "replicas, memory and cpus.",
    )
    release: ReleaseConfig = Field(
        default_factory=ReleaseConfig, description="The release task (migrations)."
    )
    cron: dict[ProcessName, CronJobConfig] = Field(
        default_factory=dict,
        description="Scheduled jobs, one table each: [cron.clear-sessions]. Each run is a "
        "one-off container of the live release (env and network included), started on the "
        "server by a small cron container, never two runs of one job at once.",
    )
    env: dict[EnvKey, EnvValue] = Field(
        default_factory=dict,
        description="Plain (non-secret) environment variables for every process. Secrets go "
        "through `dockyard env set KEY -` instead; the server's values win over these.",
    )
    deploy: DeployConfig = Field(default_factory=DeployConfig, description="Switch timing.")
    notify: NotifyConfig = Field(
        default_factory=NotifyConfig, description="Notifications of deploys and failures.")
    proxy: ProxyConfig = Field(
        default_factory=ProxyConfig, description="Server-wide router settings."
    )
    accessories: dict[AccessoryName, AccessoryConfig] = Field(
        default_factory=dict,
        description="Services next to the app (PostgreSQL, Redis, anything with a volume), "
        "one table each: [accessories.db]. The app reaches each by its name on its network, "
        "e.g. db:5432.",
    )

    @field_validator("accessories")
    @classmethod
    def _accessories(cls, value: dict[str, AccessoryConfig],
                     info: ValidationInfo) -> dict[str, AccessoryConfig]:
        processes = info.data.get("processes") or {}
        for name in value:
            if name in processes:
                raise LocatedError((name,), f"{name!r} is both a process and an accessory "
                                   f"([processes] {name}); rename one of them")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        return check_env(value)

    @field_validator("processes")
    @classmethod
    def _commands(cls, value: dict[str, ProcessConfig],
                  info: ValidationInfo) -> dict[str, ProcessConfig]:
        for name, proc in value.items():
            if proc.command is None and info.data.get("compose") is None:
                raise LocatedError((name, "command"), 'is required; write e.g. command = '
                                   '["python", "worker.py"]')
        return value

    #: the compose file's reading (compose/translate.py), set by the loader with [compose]
    _composition: Any = PrivateAttr(default=None)

    @property
    def composition(self) -> Composition | None:
        """What the compose file says, or None without [compose]."""
        return cast("Composition | None", self._composition)

    def proxy_keys_set(self) -> set[str]:
        """The [proxy] keys the file wrote explicitly (the rest follow the server)."""
        return set(self.proxy.model_fields_set)
