"""Where Dockyard keeps its state on a server. Plain files, readable with cat and jq."""

from __future__ import annotations

ROOT = "/var/lib/dockyard"
AUDIT_LOG = f"{ROOT}/audit.log"
APPS = f"{ROOT}/apps"
PROXY_SETTINGS = f"{ROOT}/proxy.json"
LOCK = f"{ROOT}/lock"


def app_dir(app: str) -> str:
    return f"{APPS}/{app}"
BACKUPS = f"{ROOT}/backups"
