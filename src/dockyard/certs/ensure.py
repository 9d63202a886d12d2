"""Keeping the certificate container in step with the server's [proxy] settings."""

from __future__ import annotations

from pathlib import Path

from dockyard.certs import acme
from dockyard.config.model import ProxyConfig
from dockyard.docker.images import ensure_image
from dockyard.errors import DockyardError
from dockyard.host.runner import Runner
from dockyard.state.files import write_files


def ensure_certs(runner: Runner, settings: ProxyConfig, *, gid: int,
                 current: tuple[str, str] | None, force: bool = False) -> bool:
    """The certificate container runs with these settings; True when (re)started.
    ``current``: (config hash, state) of the existing one, or None."""
    digest = acme.config_hash(settings, gid)
    if not force and current == (digest, "running"):
        return False
    files = {"bin/certs.sh": acme.script().encode()}
    if settings.acme_ca_root:
        root = Path(settings.acme_ca_root).expanduser()
        if not root.is_file():
            raise DockyardError("DY003", f"[proxy] acme_ca_root: {root} does not exist on this "
                                "machine; write the path of the CA file the ACME client must "
                                "trust")
        files["acme-ca-root.pem"] = root.read_bytes()
    runner.change(write_files(acme.CERTS_DIR, files, "write the certificate container's "
                              "script (and the ACME CA root it trusts)", mode=0o644))
    ensure_image(runner, settings.acme_image)
    if current is not None:
        runner.change(acme.remove())
    runner.change(acme.run(settings, gid=gid))
    return True


def current_state(runner: Runner) -> tuple[str, str] | None:
    found = runner.query(acme.inspect(), check=False)
    parts = found.out.split()
    return (parts[0], parts[1]) if found.ok and len(parts) == 2 else None
