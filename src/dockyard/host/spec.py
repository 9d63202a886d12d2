"""Parsing of ``[server] host``: where the commands go."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_HOSTNAME = re.compile(r"^[A-Za-z0-9._-]+$|^\[[0-9A-Fa-f:.]+\]$")
ACCEPTED = '"ssh://user@host:port" (e.g. "ssh://root@203.0.113.5:22") or "local"'


@dataclass(frozen=True)
class HostSpec:
    """A parsed host address. ``user``/``port`` are None when left to ~/.ssh/config."""

    kind: str  # "ssh" or "local"
    hostname: str = ""
    user: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> HostSpec:
        if text == "local":
            return cls(kind="local")
        if "://" not in text:
            raise ValueError(f"{text!r} is not a host address; write {ACCEPTED}")
        parts = urlsplit(text)
        if parts.scheme != "ssh":
            raise ValueError(
                f"{text!r} uses {parts.scheme!r}; only ssh is supported; write {ACCEPTED}"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{text!r} has a path or query; write {ACCEPTED}")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{text!r} has an invalid port; write {ACCEPTED}") from None
        hostname = parts.hostname or ""
        netloc_host = parts.netloc.rsplit("@", 1)[-1]
        if netloc_host.startswith("["):
            hostname = f"[{hostname}]"
        if not hostname or not _HOSTNAME.match(hostname):
            raise ValueError(f"{text!r} has no valid host name; write {ACCEPTED}")
        if parts.password:
            raise ValueError(
                f"{text!r} contains a password; use an SSH key instead (ssh-agent or ~/.ssh)"
            )
        return cls(kind="ssh", hostname=hostname.strip("[]"), user=parts.username, port=port)

    @property
    def label(self) -> str:
        """How the host is named in messages."""
        if self.kind == "local":
            return "local"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{user}{host}{port}"
