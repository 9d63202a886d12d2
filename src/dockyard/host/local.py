"""The local Docker engine as a host (``host = "local"``): argv run directly, no shell."""

from __future__ import annotations

from collections.abc import Sequence

from dockyard.host.base import Host
from dockyard.host.spec import HostSpec


class LocalHost(Host):
    def __init__(self) -> None:
        super().__init__(HostSpec(kind="local"))

    def spawn_argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv)
