"""`dockyard config` and `dockyard init`: the file, resolved and started."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import tomli_w
import typer

from dockyard.cli.context import get
from dockyard.config.loader import parse_config
from dockyard.config.starter import starter
from dockyard.errors import ConfigError, DockyardError
from dockyard.host.spec import HostSpec
from dockyard.values import printable


def show_config(ctx: typer.Context) -> None:
    """Print the resolved configuration, every default filled in."""
    obj = get(ctx)
    cfg = obj.config()
    data = cfg.model_dump(mode="json", exclude_none=True)
    if obj.json:
        obj.emit_json(data)
        return
    print(f"# {obj.config_path}, resolved (defaults filled in)")
    print(tomli_w.dumps(data), end="")


def init(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    host: Annotated[str, typer.Option("--host", help='Server address for [server] host, '
                                      'e.g. "ssh://root@203.0.113.5" or "local".')]
    = "ssh://root@203.0.113.5:22",
) -> None:
    """Write a commented starter dockyard.toml (reads your Dockerfile's EXPOSE port)."""
    obj = get(ctx)
    path: Path = obj.config_path
    name = printable(str(path))
    try:
        HostSpec.parse(host)
    except ValueError as exc:
        raise DockyardError("DY005", f"--host: {exc}") from None
    try:
        if path.is_dir():
            raise DockyardError("DY005", f"{name} is a directory; pass the path of the file to "
                                "write, e.g. -c {name}/dockyard.toml")
        if not path.parent.is_dir():
            raise DockyardError("DY005", f"{printable(str(path.parent))}: no such directory; "
                                "create it first, or pass -c with a path in an existing one")
        if path.exists() and not force:
            raise ConfigError("DY004", f"{name} already exists; edit it, or pass --force to "
                              "replace it with a fresh starter file")
        text = starter(path.resolve().parent, host=host)
        parse_config(text, path)  # the starter must always be valid: checked before writing
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DockyardError("DY006", f"{name}: cannot be written ({exc.strerror or exc})") from None
    obj.say(f"wrote {name}; review it, then run: dockyard server check")
