"""Parsing of ``[server] host``: where the commands go.

Strict on purpose: the user, host and port end up in an ssh argv, and a destination such as
``-oProxyCommand=...`` would be read by ssh as an option. Each part must match its grammar
(``dockyard.values``: user, host name or IP literal, port), and the ssh argv also puts the
destination after ``--``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard import values

ACCEPTED = '"ssh://user@host:port" (e.g. "ssh://root@203.0.113.5:22") or "local"'
_URL = re.compile(r"ssh://(?:(?P<userinfo>[^@/]*)@)?(?P<host>\[[^\]/]*\]|[^:/@\[\]]*)"
                  r"(?::(?P<port>[^/]*))?/?")


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
        shown = values.shown(text)
        if "://" not in text:
            raise ValueError(f"{shown} is not a host address; write {ACCEPTED}")
        scheme = text.split("://", 1)[0]
        if scheme != "ssh":
            raise ValueError(f"{shown} uses {values.shown(scheme)}; only ssh is supported; "
                             f"write {ACCEPTED}")
        match = _URL.fullmatch(text)
        if match is None:
            raise ValueError(f"{shown} is not a host address (a path, query or stray "
                             f"character); write {ACCEPTED}")
        user = match.group("userinfo")
        if user is not None and ":" in user:
            raise ValueError(f"{shown} contains a password; use an SSH key instead (ssh-agent "
                             "or ~/.ssh)")
        host = match.group("host")
        bracketed = host.startswith("[")
        host = host.strip("[]")
        try:
            if user is not None:
                values.ssh_user(user)
            if not host:
                raise ValueError("it has no host name")
            if bracketed and ":" not in host:
                raise ValueError(f"{values.shown(host)} in brackets is not an IPv6 address")
            if not bracketed and ":" in host:
                raise ValueError("an IPv6 address must be written in brackets, e.g. "
                                 "ssh://root@[2001:db8::1]")
            values.hostname(host)
            port = match.group("port")
            number = values.port(port) if port is not None else None
        except ValueError as exc:
            raise ValueError(f"{shown}: {exc}; write {ACCEPTED}") from None
        return cls(kind="ssh", hostname=host, user=user, port=number)

    @property
    def label(self) -> str:
        """How the host is named in messages."""
        if self.kind == "local":
            return "local"
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{user}{host}{port}"
