"""`dockyard proxy snippet`: the configuration for a web server that already runs on the
server and forwards the app's names to Dockyard's router (Dockyard behind it)."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

import typer

from dockyard import values
from dockyard.cli.context import get, group
from dockyard.errors import DockyardError
from dockyard.router import snippets

app = group("Dockyard behind a web server that already runs on the server.")

_LISTEN = re.compile(r"(?:(?P<addr>\*|[0-9.]{7,15}|\[[0-9a-fA-F:]+\]):)?(?P<port>[0-9]{1,5})")

WHERE = {
    "nginx": ("put it in /etc/nginx/sites-available/{app} and link it from sites-enabled "
              "(ln -s ../sites-available/{app} /etc/nginx/sites-enabled/), then: "
              "nginx -t && systemctl reload nginx; for HTTPS on these names: "
              "certbot --nginx {names} (it adds the listen 443 ssl lines)"),
    "apache": ("put it in /etc/apache2/sites-available/{app}.conf, then: a2enmod proxy "
               "proxy_http proxy_wstunnel headers rewrite && a2ensite {app} && "
               "apachectl configtest && systemctl reload apache2; for HTTPS: "
               "certbot --apache {names}"),
    "caddy": ("add it to /etc/caddy/Caddyfile (or a file it imports), then: caddy validate "
              "--config /etc/caddy/Caddyfile && systemctl reload caddy"),
}


def listen_address(value: str) -> str:
    """``[ADDR:]PORT`` as the web server writes it; DY005 otherwise."""
    match = _LISTEN.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        values.port(match.group("port"))
        addr = match.group("addr")
        if addr and addr != "*":
            ipaddress.ip_address(addr.strip("[]"))
    except ValueError:
        raise DockyardError("DY005", f"--listen {value!r}: not ADDR:PORT or PORT; write e.g. "
                            "--listen 127.0.0.1:8081 or --listen 80") from None
    return value


def snippet(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(metavar="SERVER",
                                        help="The web server in front: nginx, apache or caddy.")],
    listen: Annotated[str | None, typer.Option(
        "--listen", metavar="ADDR:PORT", help="Where that server takes these names, as plain "
        "HTTP (default: port 80).")] = None,
) -> None:
    """Print the web server configuration that forwards this app's names to the router.

    Only the configuration goes to stdout (a sites-enabled file for nginx, a site file for
    Apache, a site block for Caddy); where to put it, how to reload, and what to set in
    dockyard.toml go to stderr. Dockyard never edits that server's files. Offline: it reads
    [proxy] bind and http_port from this file."""
    obj = get(ctx)
    if kind not in snippets.KINDS:
        raise DockyardError("DY005", f"{kind!r} is not a web server Dockyard writes for; "
                            f"use one of: {', '.join(snippets.KINDS)}")
    cfg = obj.config()
    if listen is not None:
        listen_address(listen)
    if not cfg.web.domains:
        raise DockyardError("DY005", f"[web] domains is empty in {obj.config_path}: the "
                            "snippet forwards the app's names; add them first")
    proxy = cfg.proxy
    host = "127.0.0.1" if proxy.bind in ("0.0.0.0", "127.0.0.1") else proxy.bind
    router = f"{host}:{proxy.http_port}"
    default_listen = "*:80" if kind == "apache" else "80"
    forward = snippets.Forward(cfg.app.name, list(cfg.web.domains), router,
                               listen or default_listen, round(proxy.tunnel_timeout),
                               tls_elsewhere=listen is None)
    print(snippets.render(kind, forward), end="")
    err = obj.err
    names = " ".join(f"-d {d}" for d in cfg.web.domains)
    err.print(f"# {WHERE[kind].format(app=cfg.app.name, names=names)}", soft_wrap=True)
    port = (listen or default_listen).rsplit(":", 1)[-1]
    if port == str(proxy.http_port):
        err.print(f"# warning: the router's http_port is {proxy.http_port} too: one port "
                  "cannot be held by both; set [proxy] http_port = 8080 (and bind = "
                  "\"127.0.0.1\") and run: dockyard router apply", soft_wrap=True)
    elif not proxy.behind_proxy:
        err.print(f"# note: [proxy] bind is {proxy.bind}: the router also answers other "
                  "machines directly on port "
                  f"{proxy.http_port}; bind = \"127.0.0.1\" keeps it to the web server "
                  "(then: dockyard router apply)", soft_wrap=True)
    if cfg.web.tls:
        err.print("# note: the web server in front ends TLS: set [web] tls = false so the "
                  "router does not ask for certificates of its own", soft_wrap=True)
