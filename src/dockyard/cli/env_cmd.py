"""`dockyard env`: the app's environment and secrets, with the server as the source of truth.

Values are read from the command line (`KEY=VALUE`) or, the documented way for secrets,
from stdin (`KEY -`), and reach the server over SSH's stdin only. Listing masks values unless
`--reveal`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dockyard import values
from dockyard.cli.context import AppContext, get, group
from dockyard.cli.tables import Column, fitted
from dockyard.deploy import deploy as flows
from dockyard.errors import DockyardError
from dockyard.state import env as env_state
from dockyard.state.releases import read_state

app = group("The app's environment and secrets (stored on the server).")

MASK = "••••••••"


def _apply(obj: AppContext, change: dict[str, str | None], *, restart: bool,
           secret: bool = False) -> None:
    """Run the env change; prints what happened (never a value). ``secret``: the values set
    are secrets (`env list` masks them); otherwise plain ones (shown)."""
    cfg = obj.config()
    runner = obj.runner()

    def edit(current: dict[str, str]) -> dict[str, str]:
        for key, value in change.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        return current

    progress = obj.progress()
    given = {k for k, v in change.items() if v is not None}
    result, _ = flows.env_release(runner, cfg, progress, edit, restart=restart,
                                  secret=given if secret else (), plain=() if secret else given)
    if runner.dry_run:
        return
    keys = ", ".join(sorted(change))
    if result is not None:
        obj.err.print(f"{keys}: stored; "
                      + result.summary(cfg.app.name, " with the new environment"), markup=False)
    else:
        deployed = runner.read_one(read_state(cfg.app.name)).current is not None
        if not deployed:
            obj.err.print(f"{keys}: stored on {runner.host.label}; the first deploy uses it",
                          markup=False)
        elif not restart:
            obj.err.print(f"{keys}: stored; not applied (--no-restart): dockyard status shows "
                          "it until the next deploy", markup=False)
        else:
            obj.err.print(f"{keys}: unchanged", markup=False)


def _check_key(key: str) -> None:
    try:
        values.env_key(key)
    except ValueError as exc:
        raise DockyardError("DY005", str(exc)) from None


@app.command("set")
def set_(
    ctx: typer.Context,
    pairs: Annotated[list[str], typer.Argument(
        metavar="KEY=VALUE", help="KEY=VALUE..., or KEY - to read the value from stdin (the "
        "way for secrets).")],
    no_restart: Annotated[bool, typer.Option("--no-restart", help="Store only; running "
                                             "containers keep their environment.")] = False,
    secret: Annotated[bool, typer.Option("--secret", help="A secret: env list masks it (a "
                                         "value read from stdin always is).")] = False,
) -> None:
    """Set variables; a running app gets a new release with them, with zero downtime. A
    value given as KEY=VALUE is plain (env list shows it) unless --secret; one read from
    stdin (KEY -) is a secret."""
    obj = get(ctx)
    change: dict[str, str | None] = {}
    if len(pairs) == 2 and pairs[1] == "-" and "=" not in pairs[0]:
        secret = True
        _check_key(pairs[0])
        value = sys.stdin.read()
        if value.endswith("\n"):
            value = value[:-1]
        if value.endswith("\r"):
            value = value[:-1]
        change[pairs[0]] = value
    else:
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise DockyardError("DY005", f"{pair!r}: write KEY=VALUE, or KEY - to read the "
                                    "value from stdin")
            _check_key(key)
            change[key] = value
    for key, value in change.items():
        assert value is not None
        try:
            env_state.check_value(key, value)
        except ValueError as exc:
            raise DockyardError("DY005", str(exc)) from None
    obj.runner().add_secrets(env_state.redactable({k: v for k, v in change.items() if v}))
    _apply(obj, change, restart=not no_restart, secret=secret)


@app.command("unset")
def unset(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(metavar="KEY", help="Variables to remove.")],
    no_restart: Annotated[bool, typer.Option("--no-restart", help="Store only.")] = False,
) -> None:
    """Remove variables from the server's environment."""
    obj = get(ctx)
    for key in keys:
        _check_key(key)
    _apply(obj, dict.fromkeys(keys), restart=not no_restart)


def env_rows(server: dict[str, str], plain: dict[str, str], masked: set[str], *,
             reveal: bool) -> list[dict[str, str]]:
    """What `env list` shows: each variable, its value (secrets masked unless ``reveal``)
    and where it comes from."""
    rows = []
    for key in sorted(set(server) | set(plain)):
        if key in server:
            source = "server (overrides dockyard.toml)" if key in plain else "server"
            value = server[key]
        else:
            source, value = "dockyard.toml", plain[key]
        hidden = key in server and key in masked and not reveal
        rows.append({"key": key, "value": MASK if hidden else value, "source": source})
    return rows


def _read(obj: AppContext) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """(the server's variables, dockyard.toml's, the names to mask: secrets and every name
    an accessory takes as a secret)."""
    runner = obj.runner()
    cfg = obj.config()
    server, secret = runner.read(env_state.read(cfg.app.name),
                                 env_state.secret_keys(cfg.app.name))
    runner.add_secrets(env_state.redactable(server))
    masked = set(server) if secret is None else set(secret)
    for accessory in cfg.accessories.values():
        masked |= set(accessory.secrets)
    return server, cfg.env, masked


@app.command("list")
def list_(
    ctx: typer.Context,
    reveal: Annotated[bool, typer.Option("--reveal", help="Show the values.")] = False,
) -> None:
    """Every variable the app gets and where it comes from; secrets masked unless --reveal
    (plain values set with KEY=VALUE show)."""
    obj = get(ctx)
    rows = env_rows(*_read(obj), reveal=reveal)
    if obj.json:
        obj.emit_json(rows)
        return
    if not rows:
        obj.err.print("no variables set", markup=False)
        return
    obj.console.print(fitted([Column("key", key=True), Column("value"), Column("source")],
                             [[r["key"], r["value"], r["source"]] for r in rows],
                             width=obj.console.width), markup=False)


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A dotenv file (KEY=value lines).")],
    no_restart: Annotated[bool, typer.Option("--no-restart", help="Store only.")] = False,
) -> None:
    """Set every variable of a dotenv file (quotes removed; errors name the line). They
    count as secrets: env list masks them."""
    obj = get(ctx)
    name = values.printable(str(file))
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise DockyardError("DY006", f"{name}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DockyardError("DY005", f"{name} line {line}: a byte that is not UTF-8; save the "
                            "file as UTF-8 and import again") from None
    try:
        found = env_state.parse_dotenv(text)
    except env_state.DotenvError as exc:
        raise DockyardError("DY005", f"{name} {exc}; fix that line and import again") from None
    if not found:
        raise DockyardError("DY005", f"{name} has no KEY=value lines")
    obj.runner().add_secrets(env_state.redactable(found))
    _apply(obj, dict(found), restart=not no_restart, secret=True)


@app.command("export")
def export(
    ctx: typer.Context,
    reveal: Annotated[bool, typer.Option("--reveal", help="Required: the output holds the "
                                         "secret values.")] = False,
) -> None:
    """Print the server's variables as a dotenv file (needs --reveal)."""
    obj = get(ctx)
    if not reveal:
        raise DockyardError("DY005", "env export prints secret values: pass --reveal")
    server, _, _ = _read(obj)
    sys.stdout.write(env_state.format_dotenv(server))
