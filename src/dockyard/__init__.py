"""Dockyard: deploy Dockerized apps to your own server, with every step visible."""

import time

__version__ = "0.1.0"

#: When this process imported Dockyard: a command's duration starts here (as close to what
#: `time dockyard ...` measures as Python allows).
_STARTED: float | None = time.monotonic()


def take_start() -> float:
    """The process's start for its first command; later ones (tests that run several in
    one process) start when they are called."""
    global _STARTED
    started, _STARTED = (_STARTED if _STARTED is not None else time.monotonic()), None
    return started
