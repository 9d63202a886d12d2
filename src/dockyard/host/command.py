"""A command to run on a host: an argv list plus what a person needs to know about it.

Builders (docker/, router/, state/, …) return these and never run anything; the Runner
decides whether to run or print them. ``changes`` separates read-only queries, which run
even under ``--dry-run``, from commands that change the server, which are printed instead.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field


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

    def __post_init__(self) -> None:
        if not self.argv:
            raise ValueError("empty command")
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))

    @property
    def line(self) -> str:
        """Shell-quoted, one line: what --dry-run, --verbose and the audit log show."""
        text = shlex.join(self.argv)
        if self.stdin is not None or self.stdin_path is not None:
            text += f" < {self.stdin_label or '<stdin>'}"
        return text


def change(argv: Sequence[str], why: str = "", *, stdin: bytes | None = None,
           stdin_label: str = "", stdin_path: str | None = None,
           if_fails: str = "") -> Command:
    """A command that changes the server: printed, not run, under --dry-run; audited."""
    return Command(tuple(argv), why=why, changes=True, stdin=stdin, stdin_label=stdin_label,
                   stdin_path=stdin_path, if_fails=if_fails)


def query(argv: Sequence[str], why: str = "") -> Command:
    """A read-only command: runs even under --dry-run (shown as a query), never audited."""
    return Command(tuple(argv), why=why, changes=False)
