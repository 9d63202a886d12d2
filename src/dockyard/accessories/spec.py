"""An accessory as it exists on the server: container, volumes, env file, uploaded files.

Resolved once from ``[accessories.NAME]``; every name on the server is prefixed with the
app's, so two apps can both have a ``db`` without meeting. Pure: no I/O but reading the
small files the config lists (they are uploaded before the accessory starts).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from dockyard.config.model import AccessoryConfig, Config
from dockyard.errors import DockyardError
from dockyard.state import env as env_state
from dockyard.state import paths

#: Where each type keeps its data when the config names no volume (as the official images).
DATA_DIRS = {"postgres": "/var/lib/postgresql/data", "redis": "/data"}
#: Largest file `files` uploads: they are configuration, not data.
MAX_FILE = 1024 * 1024


@dataclass(frozen=True)
class Mount:
    """One volume: a Docker volume (``named``) or a directory on the server."""

    source: str
    target: str
    read_only: bool
    named: bool

    @property
    def arg(self) -> str:
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")


@dataclass(frozen=True)
class FileUpload:
    local: Path
    target: str
    #: file name under the accessory's files directory on the server
    stored: str


@dataclass(frozen=True)
class Accessory:
    app: str
    name: str
    config: AccessoryConfig
    base_dir: Path

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def image(self) -> str:
        return self.config.image

    @property
    def container(self) -> str:
        """``<app>-<name>``: one container per accessory, always the same name."""
        return f"{self.app}-{self.name}"

    @property
    def network(self) -> str:
        return self.app

    @property
    def env_file(self) -> str:
        return f"{paths.app_dir(self.app)}/accessories/{self.name}.env"

    @property
    def files_dir(self) -> str:
        return f"{paths.app_dir(self.app)}/accessories/{self.name}/files"

    @property
    def backup_dir(self) -> str:
        return f"{paths.BACKUPS}/{self.app}/{self.name}"

    def mounts(self) -> list[Mount]:
        out = []
        for item in self.config.volumes:
            parts = item.split(":")
            source, target = parts[0], parts[1]
            read_only = len(parts) == 3 and parts[2] == "ro"
            named = not source.startswith("/")
            out.append(Mount(f"{self.app}-{source}" if named else source, target, read_only,
                             named))
        if not out and self.kind in DATA_DIRS:
            out.append(Mount(f"{self.container}-data", DATA_DIRS[self.kind], False, True))
        return out

    def uploads(self) -> list[FileUpload]:
        out = []
        for i, item in enumerate(self.config.files):
            local, _, target = item.rpartition(":")
            path = (self.base_dir / local).resolve()
            # the stored name goes into a --volume=SRC:DST:ro spec: no ":" or "," in it
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", path.name)
            out.append(FileUpload(path, target, f"{i}-{safe}"))
        return out

    def read_uploads(self) -> dict[str, bytes]:
        """The files to upload, read now; a missing or large file is a config error."""
        out = {}
        for up in self.uploads():
            where = f"accessories.{self.name}.files"
            if not up.local.is_file():
                raise DockyardError("DY003", f"{where}: {up.local} does not exist; write a path "
                                    "relative to dockyard.toml")
            if up.local.stat().st_size > MAX_FILE:
                raise DockyardError("DY003", f"{where}: {up.local} is larger than 1 MiB; files "
                                    "are for configuration, put data in a volume")
            out[up.stored] = up.local.read_bytes()
        return out

    def env(self, server_env: dict[str, str]) -> dict[str, str]:
        """Its plain env plus exactly the secrets it lists, taken from the server's env."""
        missing = [k for k in self.config.secrets if k not in server_env]
        if missing:
            raise DockyardError(
                "DY062", f"accessories.{self.name}.secrets: {missing[0]} is not set on the "
                f"server; run: dockyard env set {missing[0]} -  (the value is read from stdin)")
        return {**self.config.env, **{k: server_env[k] for k in self.config.secrets}}

    def config_hash(self, server_env: dict[str, str]) -> str:
        """Changes when anything that shapes the container changes (secret values are
        hashed, never stored)."""
        data = {
            "image": self.image, "cmd": self.config.cmd, "kind": self.kind,
            "env": env_state.format_env(self.env(server_env)),
            "mounts": [m.arg for m in self.mounts()], "port": self.config.port,
            "files": {name: hashlib.sha256(body).hexdigest()
                      for name, body in sorted(self.read_uploads().items())},
        }
        if self.config.memory or self.config.cpus:  # absent: the hash of earlier versions
            data["limits"] = f"{self.config.memory}/{self.config.cpus}"
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def publish(self) -> str | None:
        """``-p`` value: on the server's 127.0.0.1 only, unless the port names an address."""
        if self.config.port is None:
            return None
        parts = self.config.port.split(":")
        if len(parts) == 3:  # the file named the address
            return self.config.port
        host, inner = (parts[0], parts[1]) if len(parts) == 2 else (parts[0], parts[0])
        return f"127.0.0.1:{host}:{inner}"


def resolve(config: Config, name: str, base_dir: Path) -> Accessory:
    if config.composition is not None:  # a compose service's name stands for its accessory
        name = config.composition.accessory_of(name)
    if name not in config.accessories:
        known = ", ".join(sorted(config.accessories)) or "none"
        raise DockyardError("DY060", f"{name!r} is not an accessory of {config.app.name}; "
                            f"declared under [accessories]: {known}")
    return Accessory(config.app.name, name, config.accessories[name], base_dir)


def resolve_all(config: Config, base_dir: Path) -> list[Accessory]:
    return [Accessory(config.app.name, n, c, base_dir)
            for n, c in sorted(config.accessories.items())]
