"""The ``dockyard`` command's entry point: the SSH connection starts first (host/preconnect.py),
then the CLI is imported and run."""

from __future__ import annotations

import sys


def main() -> None:
    from dockyard.host import preconnect

    preconnect.start(sys.argv[1:])
    from dockyard.cli.main import main as run

    run()
