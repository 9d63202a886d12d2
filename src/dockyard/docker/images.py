"""The one rule for every image Dockyard runs: use it when the server has it, pull it
otherwise. Pulling an image that is present would waste time and, for moving tags, change
what runs without anyone asking."""

from __future__ import annotations

from dockyard.docker import engine
from dockyard.host.runner import Runner


def ensure_image(runner: Runner, image: str) -> bool:
    """Make sure ``image`` is on the server; True when it had to be pulled."""
    present = runner.query(engine.image_exists(image), check=False)
    if present.ok:
        return False
    runner.change(engine.pull(image))
    return True
