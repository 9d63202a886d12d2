"""Keeping the certificate container in step with the server's [proxy] settings."""

from __future__ import annotations

from pathlib import Path

from dockyard import scripts
from dockyard.certs import acme
from dockyard.config.model import ProxyConfig
from dockyard.docker import engine
from dockyard.errors import CommandFailed, DockyardError
from dockyard.host.command import Command
from dockyard.host.runner import Runner
from dockyard.state import snapshot
from dockyard.state.files import write_files


def ensure_certs(runner: Runner, settings: ProxyConfig, *, gid: int,
                 current: tuple[str, str] | None, image_present: bool,
                 force: bool = False) -> bool:
    """The certificate container runs with these settings; True when (re)started.
    ``current``: (config hash, state) of the existing one, or None. One round trip."""
    digest = acme.config_hash(settings, gid)
    if not force and current == (digest, "running"):
        return False
    files = {"bin/certs.sh": acme.script().encode(),
             "bin/notify.sh": scripts.source("notify").encode()}  # a renewal that fails
    if settings.acme_ca_root:
        root = Path(settings.acme_ca_root).expanduser()
        if not root.is_file():
            raise DockyardError("DY003", f"[proxy] acme_ca_root: {root} does not exist on this "
                                "machine; write the path of the CA file the ACME client must "
                                "trust")
        files["acme-ca-root.pem"] = root.read_bytes()
    changes: list[Command] = [write_files(acme.CERTS_DIR, files, "write the certificate "
                                          "container's script (and the ACME CA root it trusts)",
                                          mode=0o644)]
    if not image_present:
        changes.append(engine.pull(settings.acme_image))
    if current is not None:
        changes.append(acme.remove())
    changes.append(acme.run(settings, gid=gid))
    try:
        runner.change_all(changes)
    except CommandFailed as exc:
        # two commands at once (two apps' first HTTPS deploys) both found it missing: the
        # other one's container is as good as ours when it runs with the same settings
        if "already in use" not in exc.stderr_tail:
            raise
        found = runner.read_one(snapshot.helpers([acme.NAME])).found.get(acme.NAME)
        if found is None or found[0] != digest:
            raise
    return True
