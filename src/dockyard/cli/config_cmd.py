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
    if cfg.composition is not None:
        print(f"# the services of {', '.join(p.name for p in cfg.composition.files)}:")
        for line in cfg.composition.lines():
            print(f"#   {printable(line)}")
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
    compose: Annotated[bool, typer.Option(
        "--compose", help="Deploy the services of a compose file: FILE, or the "
        "docker-compose.yml (compose.yaml, ...) next to dockyard.toml; says what each service "
        "becomes.")] = False,
    file: Annotated[str | None, typer.Argument(
        metavar="[FILE]", help="With --compose: the compose file.")] = None,
) -> None:
    """Write a commented starter dockyard.toml (reads your Dockerfile's EXPOSE port, or
    with --compose your compose file)."""
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
        if file is not None and not compose:
            raise DockyardError("DY005", f"{printable(file)}: a file is read with --compose; "
                                f"write: dockyard init --compose {printable(file)}")
        if compose:
            text = _compose_starter(path, file or "", host)
        else:
            text = starter(path.resolve().parent, host=host)
        config = parse_config(text, path)  # the starter must be valid: checked before writing
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DockyardError("DY006", f"{name}: cannot be written ({exc.strerror or exc})") from None
    if config.composition is not None:
        obj.say(f"read {', '.join(p.name for p in config.composition.files)}:")
        for line in config.composition.lines():
            obj.say(f"  {printable(line)}")
    obj.say(f"wrote {name}; review it, then run: dockyard server check")


def _compose_starter(path: Path, compose: str, host: str) -> str:
    """The starter for a compose file: which service is routed, and on which port."""
    from dockyard.compose.load import load
    from dockyard.compose.translate import Translation, guess_web
    from dockyard.config.model import ComposeConfig
    from dockyard.config.starter import compose_starter, find_compose

    directory = path.resolve().parent
    if compose:
        file = Path(compose)
        file = file if file.is_absolute() else (Path.cwd() / file)
    else:
        found = find_compose(directory)
        if found is None:
            raise DockyardError("DY001", f"no compose file next to {printable(str(path))} "
                                "(compose.yaml, docker-compose.yml, ...); pass it: "
                                "dockyard init --compose FILE")
        file = found
    if not file.is_file():
        raise DockyardError("DY001", f"{printable(str(file))}: no such file; pass the compose "
                            "file: dockyard init --compose FILE")
    import os

    relative = os.path.relpath(file.resolve(), directory)
    project = load([file])
    web = guess_web(project)
    if web is None:
        raise DockyardError("DY008", f"{file.name}: no service to route (none builds an "
                            "image or publishes ports); add ports: to the web service")
    settings = ComposeConfig(file=relative, web=[web])
    t = Translation(project, settings, "app", directory, {}, {})
    port = t._port(t.services[web])
    return compose_starter(directory, relative, web, port, host=host)
