"""`dockyard dashboard`: the server (or several) on a local web page, read over SSH."""

from __future__ import annotations

import socket
import sys
import webbrowser
from typing import Annotated

import typer

from dockyard.cli.context import get
from dockyard.errors import DockyardError
from dockyard.host.runner import Invocation, Runner
from dockyard.host.spec import HostSpec
from dockyard.host.ssh import SshHost


def dashboard(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1 "
                                      "(default: a free one).")] = 0,
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in the browser.")]
    = False,
    hosts: Annotated[list[str] | None, typer.Option(
        "--host", metavar="ssh://user@host", help="Another server to show too (repeat "
        "for more).")] = None,
) -> None:
    """A local web page: every app, release, request, backup and certificate of the server,
    live; read over SSH, nothing installed on the server. Prints its address (with a token);
    Ctrl-C stops it."""
    import uvicorn

    from dockyard.dashboard.collect import Collector
    from dockyard.dashboard.guard import Guard
    from dockyard.dashboard.server import Actions, make_app

    obj = get(ctx)
    cfg = obj.config()
    runners = [obj.runner()]
    for text in hosts or []:
        try:
            spec = HostSpec.parse(text)
        except ValueError as exc:
            raise DockyardError("DY005", f"--host: {exc}") from None
        runners.append(Runner(SshHost(spec, connect_timeout=cfg.server.connect_timeout),
                              invocation=Invocation(subcommand="dashboard", app="")))
    collectors = [Collector(r) for r in runners]
    for collector in collectors:
        collector.overview()  # connect now: an unreachable server is said before the address
        collector.start_requests()
    # listening before the address is printed: a browser opened at once finds it
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        raise DockyardError("DY005", f"--port {port}: cannot listen on 127.0.0.1 "
                            f"({exc.strerror}); pick another port or leave --port out") from None
    sock.listen(128)
    chosen = sock.getsockname()[1]
    guard = Guard(chosen)
    actions = Actions(obj.config_path.resolve(), cfg.app.name, sorted(cfg.accessories))
    app = make_app(collectors, guard, actions)
    sys.stdout.write(f"{guard.url()}\n")
    sys.stdout.flush()
    obj.err.print("dashboard on 127.0.0.1 only; Ctrl-C stops it", markup=False)
    if open_browser:
        webbrowser.open(guard.url())
    server = uvicorn.Server(uvicorn.Config(app, access_log=False, log_level="warning",
                                           lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        for collector in collectors:
            collector.stop()
