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
    proxy = data.pop("proxy", None)
    print(f"# {obj.config_path}, resolved (defaults filled in)")
    print(tomli_w.dumps(data), end="")
    if proxy is not None:
        print(proxy_section(proxy, set(cfg.proxy.model_fields_set)), end="")


def proxy_section(values: dict[str, object], in_file: set[str]) -> str:
    """[proxy] as this file wishes it, said plainly: the server runs whatever `router apply`
    last applied (this command stays offline, so it cannot say what that is)."""
    lines = ["", "# [proxy] is server-wide: these are this file's wishes, not necessarily what the",
             "# server runs. The server uses them after: dockyard router apply (its --dry-run",
             "# shows what would change on the server)."]
    if not in_file:
        lines.append("# This file has no [proxy]: every value below is Dockyard's default.")
    lines.append("[proxy]")
    for key, value in values.items():
        line = tomli_w.dumps({key: value}).strip()
        lines.append(line if key in in_file or not in_file else f"{line}  # default: not in the file")
    return "\n".join(lines) + "\n"


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
