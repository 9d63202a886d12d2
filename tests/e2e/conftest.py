"""e2e fixtures: the testbed (real dockerd, real sshd on 127.0.0.1:2222) and a clean slate.

These tests fail, not skip, when the testbed is down: run testbed/up (the README's test
command does it first).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

STATE = Path("/var/lib/dockyard")
TESTBED = Path("/var/lib/dockyard-testbed")
SSH_LOG = TESTBED / "ssh-commands.log"
SSH_HOST = "ssh://root@127.0.0.1:2222"
HTTP_PORT = 18080
HTTPS_PORT = 18443
PROXY = (f'[proxy]\nhttp_port = {HTTP_PORT}\nhttps_port = {HTTPS_PORT}\n'
         'router_image = "dockyard-testbed/router"\ntools_image = "dockyard-testbed/tools"\n')


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=120)


def clean_slate() -> None:
    """Remove every container and file Dockyard created on this test server."""
    for label in ("dockyard.role", "dockyard.app"):
        ids = sh("docker", "ps", "-aq", "--filter", f"label={label}").stdout.split()
        if ids:
            sh("docker", "rm", "-f", *ids)
    shutil.rmtree(STATE, ignore_errors=True)


@pytest.fixture(scope="session")
def testbed() -> Iterator[None]:
    if sh("docker", "info", check=False).returncode != 0:
        pytest.fail("no Docker engine: run testbed/up first")
    probe = sh("ssh", "-p", "2222", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
               "root@127.0.0.1", "--", "true", check=False)
    if probe.returncode != 0:
        pytest.fail(f"the testbed sshd does not answer ({probe.stderr.strip()}): run testbed/up")
    clean_slate()
    yield
    clean_slate()


@pytest.fixture
def clean(testbed: None) -> Iterator[None]:
    clean_slate()
    yield
    clean_slate()


class SshLog:
    """What the testbed's sshd wrapper logged since this object was made."""

    def __init__(self) -> None:
        self.offset = SSH_LOG.stat().st_size if SSH_LOG.exists() else 0

    def commands(self) -> list[str]:
        if not SSH_LOG.exists():
            return []
        with SSH_LOG.open("rb") as fh:
            fh.seek(self.offset)
            text = fh.read().decode("utf-8", "replace")
        return [line.split(" ", 1)[1] for line in text.splitlines() if " " in line]


@pytest.fixture
def ssh_log() -> SshLog:
    return SshLog()


def app_config(directory: Path, name: str = "hello", host: str = SSH_HOST, extra: str = "") -> Path:
    path = directory / "dockyard.toml"
    path.write_text(f'[app]\nname = "{name}"\n[server]\nhost = "{host}"\n{extra}')
    return path
