"""What every CLI command shares: global options, the config, the host and the runner.

Built lazily so `dockyard init` needs no config and `dockyard config` needs no server.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from dockyard.config.loader import load_config
from dockyard.config.model import Config
from dockyard.deploy.progress import Progress
from dockyard.errors import DockyardError
from dockyard.host.base import Clock, Host
from dockyard.host.local import LocalHost
from dockyard.host.runner import Invocation, Runner
from dockyard.host.spec import HostSpec
from dockyard.host.ssh import SshHost


def group(help: str) -> typer.Typer:
    """A command group. Help is plain text: Rich markup would swallow the bracketed names
    the help is full of ("[proxy]", "[accessories.NAME]")."""
    return typer.Typer(rich_markup_mode=None, help=help, no_args_is_help=True)


@dataclass
class AppContext:
    config_path: Path = Path("dockyard.toml")
    destination: str | None = None
    dry_run: bool = False
    verbose: bool = False
    json: bool = False
    explain: bool = False
    # markup off: names, paths and values are printed as they are ("[proxy]" stays)
    console: Console = field(default_factory=lambda: Console(highlight=False, markup=False))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False,
                                                         markup=False))
    subcommand: str = "?"
    #: time.monotonic() when the command started (dockyard.take_start)
    started: float = field(default_factory=time.monotonic)
    _config: Config | None = None
    _host: Host | None = None
    _runner: Runner | None = None
    _peers: list[Host] = field(default_factory=list)

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, self.destination)
        return self._config

    def host(self) -> Host:
        if self._host is None:
            cfg = self.config()
            spec = HostSpec.parse(cfg.server.host)
            if spec.kind == "local":
                self._host = LocalHost()
            else:
                self._host = SshHost(spec, connect_timeout=cfg.server.connect_timeout)
        return self._host

    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(
                self.host(),
                invocation=Invocation(subcommand=self.subcommand,
                                      app=self.config().app.name),
                dry_run=self.dry_run,
                verbose=self.verbose,
                explain=self.explain,
            )
            if type(self._runner.host.clock) is Clock:
                self._runner.started = self.started  # real time: from the process's start
            self._runner.peers = [self._peer(host) for host in self.config().server.all_hosts[1:]]
            if self._runner.peers:
                for r in (self._runner, *self._runner.peers):
                    r.where = f"{r.host.label}: "
            if self.explain:
                self._runner.out.write(
                    f"# explain: the commands that would change {self._runner.host.label}, in "
                    "order, each with why it runs and what a failure there means; read-only "
                    "queries run for real; nothing is changed\n"
                )
            elif self.dry_run:
                self._runner.out.write(
                    f"# dry run: commands that would change {self._runner.host.label}, in order; "
                    "nothing is changed\n"
                )
        return self._runner

    def _peer(self, host: str) -> Runner:
        """A runner for another [server] hosts entry (the cluster's other nodes)."""
        cfg = self.config()
        peer = Runner(SshHost(HostSpec.parse(host), connect_timeout=cfg.server.connect_timeout),
                      invocation=Invocation(subcommand=self.subcommand, app=cfg.app.name),
                      dry_run=self.dry_run, verbose=self.verbose, explain=self.explain)
        peer.started = self.started
        self._peers.append(peer.host)
        return peer

    def need_confirmation(self, yes: bool, what: str) -> None:
        """Called before connecting: a command that will ask cannot run without a terminal
        unless --yes says the answer."""
        if self.dry_run or yes or sys.stdin.isatty():
            return
        raise DockyardError("DY005", f"{what} needs confirmation; run it in a terminal or "
                            "pass --yes")

    def confirm(self, question: str, yes: bool) -> None:
        """Ask (after need_confirmation): no is DY031, nothing changed."""
        if self.dry_run or yes:
            return
        if not typer.confirm(question, default=False):
            raise DockyardError("DY031", "nothing changed")

    def emit_json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")

    def say(self, message: str) -> None:
        """Progress for people: to stderr under --json so stdout stays parseable."""
        (self.err if self.json else self.console).print(message)

    def progress(self) -> Progress:
        """Steps on stderr; quiet under --json; planned under --dry-run and explain."""
        return Progress(quiet=self.json, planned=self.dry_run)

    def close(self) -> None:
        if self._host is not None:
            self._host.close()
        for peer in self._peers:
            peer.close()


#: Options of every logs command (app processes, accessories).
FollowOpt = Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines.")]
LinesOpt = Annotated[int, typer.Option("--lines", "-n", min=1, max=1_000_000,
                                       help="How many lines to start with.")]

#: The command line as given (global options hoisted), for commands that must know where
#: `--` was: Typer consumes it.
RAW_ARGS: list[str] = []


#: Global options that take a value (hoisted to the front of RAW_ARGS by main).
_VALUED = ("-c", "--config", "-d", "--destination")


def passthrough(path: list[str], args: list[str]) -> tuple[list[str], list[str]]:
    """For ``exec``-like commands: (the words between the command and ``--``, the command
    after ``--``), read from the command line as typed, because Click drops a leading ``--``
    and keeps unknown options among the words. Without ``--``: ([], args)."""
    i = 0
    while i < len(RAW_ARGS) and RAW_ARGS[i].startswith("-") and RAW_ARGS[i] != "--":
        i += 2 if RAW_ARGS[i] in _VALUED else 1
    words = RAW_ARGS[i:]
    if words[: len(path)] != path or "--" not in words[len(path):]:
        return [], list(args)
    dash = words.index("--", len(path))
    return words[len(path):dash], words[dash + 1:]


def get(ctx: typer.Context) -> AppContext:
    """The shared context, remembering which subcommand runs (for the audit log)."""
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    path = ctx.command_path
    obj.subcommand = path.split(" ", 1)[1] if " " in path else path
    return obj
