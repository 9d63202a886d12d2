"""Server-wide router settings, kept in /var/lib/dockyard/proxy.json.

One router serves every app on a server, so its ports and images cannot follow whichever app
deployed last. The first deploy records them; later files that leave a key out take the
server's value; a file that sets a different value is an error that names the command that
changes it for everyone: ``dockyard router apply``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from dockyard.config.model import Config, ProxyConfig
from dockyard.errors import DockyardError
from dockyard.host.command import Command
from dockyard.state import paths
from dockyard.state.files import write_files

#: Keys whose change needs a new router container (ports are published at creation).
#: Settings of the certificate container (recreated when they change; the router is not).
ACME_KEYS = ("acme_email", "acme_ca", "acme_staging", "acme_ca_root", "acme_image")
RECREATE_KEYS = ("bind", "http_port", "https_port", "router_image", "hsts", "tunnel_timeout")
#: ... of which these need new containers (published ports); the others a new HAProxy only
PORT_KEYS = ("bind", "http_port", "https_port")




def parse(text: str) -> ProxyConfig | None:
    """The server's settings, or None when the file is empty or unreadable (then defaults)."""
    if not text.strip():
        return None
    try:
        data: Any = json.loads(text)
        return ProxyConfig.model_validate(data)
    except (ValueError, ValidationError):
        return None


def write_command(settings: ProxyConfig) -> Command:
    body = json.dumps(settings.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    return write_files(paths.ROOT, {"proxy.json": body.encode()},
                       "record the router settings every app on this server shares",
                       mode=0o644, label="<proxy settings JSON>")


@dataclass(frozen=True)
class Difference:
    key: str
    file_value: Any
    server_value: Any


def differences(config: Config, server: ProxyConfig) -> list[Difference]:
    """Keys the file sets explicitly to something else than the server has."""
    out = []
    for key in sorted(config.proxy_keys_set()):
        mine, theirs = getattr(config.proxy, key), getattr(server, key)
        if mine != theirs:
            out.append(Difference(key, mine, theirs))
    return out


def effective(config: Config, server: ProxyConfig | None) -> ProxyConfig:
    """The settings a deploy of this app uses; raises DY030 when the file disagrees."""
    if server is None:
        return config.proxy
    diffs = differences(config, server)
    if diffs:
        first = diffs[0]
        details = [
            f"  [proxy] {d.key}: dockyard.toml says {d.file_value!r}, the server uses "
            f"{d.server_value!r}" for d in diffs[1:]
        ]
        details.append("  to keep the server's values, remove these keys from [proxy]")
        raise DockyardError(
            "DY030",
            f"[proxy] {first.key} = {first.file_value!r} in dockyard.toml, but the server uses "
            f"{first.server_value!r} for every app; to change it for all apps on this server "
            "run: dockyard router apply",
            details,
        )
    return server


def applied(config: Config, server: ProxyConfig | None) -> ProxyConfig:
    """What ``router apply`` writes: the server's settings with the file's explicit keys."""
    if server is None:
        return config.proxy
    updates = {key: getattr(config.proxy, key) for key in config.proxy_keys_set()}
    return server.model_copy(update=updates)


def changed_keys(old: ProxyConfig | None, new: ProxyConfig) -> list[str]:
    if old is None:
        return [k for k in ProxyConfig.model_fields]
    return [k for k in ProxyConfig.model_fields if getattr(old, k) != getattr(new, k)]
