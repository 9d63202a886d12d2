"""The steps of a plan: commands, facts and waits. Data only: the Runner runs or prints them.

- a **Command** changes the server (or, with ``changes=False``, asks it something); it
  carries its argv, why it runs, what a failure there means, its stdin (secrets and files
  travel there, never in the argv), and what it prints under ``--dry-run`` (``planned``);
- a **Fact** is a question and the parser of its answer together (pyinfra's shape): the
  Runner asks several in one round trip, also under ``--dry-run`` (they change nothing);
- a **Wait** is a poll with a deadline (a health check, a drain), printed as one line
  under ``--dry-run``.

Builders (docker/, router/, state/, …) return these and never run anything, so the flows
have no ``--dry-run`` branches: the same flow either runs or prints.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, NoReturn, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    why: str = ""
    changes: bool = True
    #: Bytes fed to the command's stdin: how secrets and files travel. Never printed or logged.
    stdin: bytes | None = field(default=None, repr=False)
    #: Describes the stdin in printed output, e.g. "<env file, 3 keys>".
    stdin_label: str = ""
    #: A local file streamed to stdin instead (build contexts can be large).
    stdin_path: str | None = None
    #: What a failure of this command means, for `dockyard explain` (the flow's general
    #: rule applies when empty).
    if_fails: str = ""
    #: Its output under --dry-run, where it does not run (e.g. "<container address>").
    planned: str = ""

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("empty command")
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))

    @property
    def line(self) -> str:
        """Shell-quoted, one line: what --dry-run, --verbose and the audit log show. A script
        sent inline shows as its file name (``sh -c <batch.sh> dockyard-batch ...``)."""
        words = list(self.argv)
        if words[:2] == ["sh", "-c"] and len(words) > 3 and words[3].startswith("dockyard-"):
            name = words[3].removeprefix("dockyard-")
            text = f"sh -c <{name}.sh> " + shlex.join(words[3:])
        else:
            text = shlex.join(words)
        if self.stdin is not None or self.stdin_path is not None:
            text += f" < {self.stdin_label or '<stdin>'}"
        return text

    @property
    def installed_script(self) -> bool:
        """Runs one of Dockyard's installed scripts (they must be on the server first)."""
        from dockyard import scripts

        return self.argv[0] == "sh" and len(self.argv) > 1 and self.argv[1].startswith(
            scripts.directory() + "/")


def change(argv: Sequence[str], why: str = "", *, stdin: bytes | None = None,
           stdin_label: str = "", stdin_path: str | None = None,
           if_fails: str = "", planned: str = "") -> Command:
    """A command that changes the server: printed, not run, under --dry-run; audited."""
    return Command(tuple(argv), why=why, changes=True, stdin=stdin, stdin_label=stdin_label,
                   stdin_path=stdin_path, if_fails=if_fails, planned=planned)


def query(argv: Sequence[str], why: str = "", *, planned: str = "") -> Command:
    """A read-only command: runs even under --dry-run (shown as a query), never audited."""
    return Command(tuple(argv), why=why, changes=False, planned=planned)


@dataclass(frozen=True)
class Answer:
    """What a fact's command answered."""

    returncode: int
    out: str
    err: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass(frozen=True)
class Fact(Generic[T]):
    """A question to the server and the parser of its answer: asked in batches, cached by
    nobody (a fact is read when a flow needs it, under the lock that makes it true)."""

    argv: tuple[str, ...]
    parse: Callable[[Answer], T]
    why: str = ""

    @property
    def command(self) -> Command:
        return Command(tuple(self.argv), why=self.why, changes=False)


def fact(argv: Sequence[str], parse: Callable[[Answer], T], why: str = "") -> Fact[T]:
    return Fact(tuple(str(a) for a in argv), parse, why)


@dataclass(frozen=True)
class Wait(Generic[T]):
    """Poll until ``poll`` returns a value (not None), at most ``timeout`` seconds; then
    ``expired`` raises. Under --dry-run it is one line (``# wait until WHAT``) and gives
    ``planned``."""

    what: str
    poll: Callable[[], T | None]
    timeout: float
    expired: Callable[[], NoReturn]
    why: str = ""
    if_fails: str = ""
    interval: float = 0.25
    planned: T | None = None
