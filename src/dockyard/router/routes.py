"""The router's routes (one per app, apps/<app>/route.json) and the rules between them."""

from __future__ import annotations

from collections.abc import Iterable

from dockyard.errors import DockyardError
from dockyard.router.config import Route


def check_domains_free(app: str, domains: Iterable[str], routes: Iterable[Route]) -> None:
    """One name, one app: a name another app routes is refused (DY043), naming that app."""
    wanted = set(domains)
    for other in routes:
        if other.app == app:
            continue
        clash = sorted(wanted & set(other.domains))
        if clash:
            raise DockyardError(
                "DY043", f"{clash[0]} is already routed to app {other.app} on this server; "
                f"remove it there first (dockyard domains remove {clash[0]}, in {other.app}'s "
                "directory), or choose another name")
