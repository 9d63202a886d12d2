"""The ``dockyard`` command. CLI modules only orchestrate: they load the config, ask builders
for commands, hand them to the runner, and print results."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import dockyard
from dockyard import __version__
from dockyard.cli import (
    accessory_cmd,
    app_cmd,
    cluster_cmd,
    config_cmd,
    context,
    cron_cmd,
    dashboard_cmd,
    domains_cmd,
    env_cmd,
    proxy_cmd,
    router_cmd,
    server_cmd,
    site_cmd,
)
from dockyard.cli.context import AppContext
from dockyard.errors import CODES, DockyardError


def _usage_names_as_users_read_them() -> None:
    """Typer writes a required argument as ``{NAME}`` in usage lines; people who use git,
    docker or kubectl read ``NAME`` (and ``[NAME]`` for an optional one, ``NAME...`` for
    several). Only the usage line changes; a Typer without this hook keeps its own."""
    argument = getattr(typer.core, "TyperArgument", None)
    if argument is None or not hasattr(argument, "_usage_display_name"):
        return

    def usage_name(self: Any) -> str:
        name = str(self.display_name_raw)
        if not self.required and not name.startswith("["):
            name = f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    argument._usage_display_name = usage_name


_usage_names_as_users_read_them()

app = typer.Typer(
    rich_markup_mode=None,
    name="dockyard",
    help="Deploy Dockerized apps to your own server with zero downtime; see every step.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[Path, typer.Option("--config", "-c", help="Path to dockyard.toml.",
                                         show_default=True)] = Path("dockyard.toml"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print every command that would "
                                          "change the server, in order; change nothing.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show each command as it "
                                          "runs, with its duration.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output where "
                                           "the output is data.")] = False,
    explain: Annotated[bool, typer.Option("--explain", hidden=True)] = False,
    destination: Annotated[str | None, typer.Option(
        "--destination", "-d", metavar="NAME",
        help="Another copy of the app, e.g. staging: dockyard.NAME.toml merged over "
        "dockyard.toml; its own name (APP-NAME), releases, env and lock.")] = None,
) -> None:
    """Global options are accepted before or after the subcommand."""
    ctx.obj = AppContext(config_path=config, destination=destination,
                         dry_run=dry_run or explain, verbose=verbose,
                         json=json_out, explain=explain, started=dockyard.take_start())
    ctx.call_on_close(ctx.obj.close)


@app.command()
def version(ctx: typer.Context) -> None:
    """Print Dockyard's version."""
    obj: AppContext = ctx.find_root().obj
    if obj.json:
        obj.emit_json({"version": __version__})
    else:
        print(f"dockyard {__version__}")


app.command("deploy")(app_cmd.deploy)
app.command("rollback")(app_cmd.rollback)
app.command("restart")(app_cmd.restart)
app.command("releases")(app_cmd.releases)
app.command("status")(app_cmd.status)
app.command("logs")(app_cmd.logs)
app.command("run", context_settings=app_cmd.PASSTHROUGH)(app_cmd.run)
app.command("exec", context_settings=app_cmd.PASSTHROUGH)(app_cmd.exec_)
app.command("remove")(app_cmd.remove)
app.command("history")(app_cmd.history)
app.command("dashboard")(dashboard_cmd.dashboard)
app.add_typer(app_cmd.lock_app, name="lock")
app.add_typer(env_cmd.app, name="env")
app.add_typer(accessory_cmd.app, name="accessory")
app.add_typer(domains_cmd.app, name="domains")
app.add_typer(domains_cmd.certs_app, name="certs")
app.command("backup")(accessory_cmd.backup)
app.command("backups")(accessory_cmd.list_backups)
app.command("restore")(accessory_cmd.restore)
app.command("config")(config_cmd.show_config)
app.command("init")(config_cmd.init)
app.add_typer(server_cmd.app, name="server")
app.add_typer(cluster_cmd.app, name="cluster")
app.add_typer(cron_cmd.app, name="cron")
app.add_typer(router_cmd.app, name="router")
proxy_cmd.app.command("snippet")(proxy_cmd.snippet)
app.add_typer(proxy_cmd.app, name="proxy")
app.add_typer(site_cmd.app, name="site")

#: Global options and whether they take a value. Moved to the front of argv so they work
#: after the subcommand too (`dockyard server check -v`), as users of git and kubectl expect.
GLOBAL_OPTIONS = {"-c": True, "--config": True, "-d": True, "--destination": True,
                  "--dry-run": False, "-v": False,
                  "--verbose": False, "--json": False, "--explain": False}

#: What `dockyard explain` knows how to explain (any command with a plan works).
EXPLAINABLE = ("deploy", "rollback", "restart", "env set", "accessory boot", "backup",
               "restore")


def explain_args(args: list[str]) -> list[str]:
    """`dockyard explain deploy` is `dockyard --explain deploy`: the dry run's plan, each line
    followed by why it happens and what a failure there means."""
    if "explain" not in args or "--" in args[: args.index("explain")]:
        return args
    i = args.index("explain")
    j = 0
    while j < i:  # only global options (and their values) may come before it
        if not args[j].startswith("-"):
            return args  # "explain" is an argument of another command
        j += 2 if GLOBAL_OPTIONS.get(args[j]) and "=" not in args[j] else 1
    rest = args[i + 1:]
    if not rest or rest[0] in ("-h", "--help"):
        print("usage: dockyard explain COMMAND [ARGS]...\n\n"
              "Prints the plan --dry-run prints, in the same order, and under each line why "
              "it happens and what a failure there means. Nothing is changed.\n\n"
              f"Commands: {', '.join(EXPLAINABLE)} (and any other command with a plan).")
        raise SystemExit(0 if rest else 2)
    return ["--explain", *args[:i], *rest]


def hoist_global_options(args: list[str]) -> list[str]:
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg
        if name in GLOBAL_OPTIONS:
            takes_value = GLOBAL_OPTIONS[name]
            if takes_value and "=" not in arg and i + 1 < len(args):
                front.extend(args[i : i + 2])
                i += 2
                continue
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    args = explain_args(hoist_global_options(list(sys.argv[1:] if argv is None else argv)))
    context.RAW_ARGS[:] = args
    try:
        # not standalone: usage errors come here too, and become one coded line like every
        # other error (Typer would draw a box); never a traceback
        code = app(args=args, prog_name="dockyard", standalone_mode=False)
    except DockyardError as exc:
        _print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Abort:
        _print_error(DockyardError("DY031", "aborted; nothing more was changed"))
        sys.exit(1)
    except Exception as exc:
        usage = _usage_error(exc)
        if usage is not None:
            _print_error(usage)
            sys.exit(usage.exit_code)
        if type(exc).__name__ == "NoArgsIsHelpError":  # `dockyard env`: its help
            print(str(exc), file=sys.stderr)
            sys.exit(2)
        if os.environ.get("DOCKYARD_DEBUG"):
            raise
        _print_error(DockyardError(
            "DY099", f"internal error: {type(exc).__name__}: {str(exc)[:200]}; this is a bug in "
            "Dockyard: please report it with the command you ran (DOCKYARD_DEBUG=1 shows the "
            "traceback)"))
        sys.exit(CODES["DY099"][1])
    sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: Exception) -> DockyardError | None:
    """Click's usage errors (unknown option, missing argument, -n -5) as DY005."""
    if type(exc).__name__ == "NoArgsIsHelpError" or not hasattr(exc, "format_message"):
        return None
    if not (hasattr(exc, "ctx") and hasattr(exc, "exit_code")):
        return None
    ctx = getattr(exc, "ctx", None)
    where = getattr(ctx, "command_path", "") or "dockyard"
    message = str(exc.format_message()).strip().rstrip(".")
    return DockyardError("DY005", f"{message}; see: {where} --help")


def _print_error(exc: DockyardError) -> None:
    for line in exc.lines():
        print(line, file=sys.stderr)
