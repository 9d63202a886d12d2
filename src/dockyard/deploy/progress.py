"""Progress on screen: each step with its duration, on stderr so stdout stays clean for
--dry-run output, --json and the output of `run`/`exec`."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.text import Text


class Progress:
    """``planned``: under --dry-run and explain nothing runs, so a step shows as planned
    (``· build … (planned)``), never with a check mark or a duration."""

    def __init__(self, *, quiet: bool = False, planned: bool = False) -> None:
        self.console = Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.planned = planned
        self.timings: dict[str, float] = {}
        self.started = time.monotonic()

    @contextmanager
    def step(self, title: str, key: str | None = None) -> Iterator[None]:
        start = time.monotonic()
        if self.planned:
            if not self.quiet:
                self.console.print(Text.assemble(("·", "dim"), f" {title} ",
                                                 ("(planned)", "dim")), highlight=False)
            yield
            return
        if not self.quiet:
            self.console.print(Text.assemble(("→", "dim"), f" {title}"), highlight=False)
        ok = False
        try:
            yield
            ok = True
        finally:
            took = time.monotonic() - start
            self.timings[key or title] = self.timings.get(key or title, 0.0) + took
            if not self.quiet:
                mark = ("✓", "green") if ok else ("✗", "red")
                self.console.print(Text.assemble(mark, f" {title} ", (f"({took:.1f}s)", "dim")))

    def note(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, markup=False, highlight=False)

    def warn(self, message: str) -> None:
        self.console.print(Text.assemble(("warning:", "yellow"), f" {message}"))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def plain(message: str) -> None:
    print(message, file=sys.stderr)
