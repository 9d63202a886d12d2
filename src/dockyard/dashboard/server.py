"""The dashboard's web server: Starlette on uvicorn, bound to 127.0.0.1, every request through
the Guard (guard.py). Pages are rendered here with their data (the first paint needs no
script); static/app.js then follows the server-sent events of /events to keep them current.

Actions (rollback, restart, a backup, a certificate renewal) run the CLI itself, in a
subprocess of this interpreter with the same dockyard.toml: first `dockyard explain ...`
(the plan is shown), then, asked a second time, the command, whose lines stream to the page
as the CLI prints them. The lock, the audit log and every check are the CLI's own.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .collect import Collector
from .guard import HEADERS, Guard

EVENT_INTERVAL_S = 3.0
STATIC = {"app.js": "text/javascript", "style.css": "text/css",
          "uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css"}


@dataclass
class Actions:
    """The actions the page may ask for, on the app of the dockyard.toml it was started with."""

    config: Path | None
    app: str | None
    accessories: list[str] = field(default_factory=list)
    running: dict[str, Any] = field(default_factory=dict)

    def argv(self, action: str, app: str, arg: str) -> list[str]:
        if self.config is None or app != self.app:
            raise ValueError("actions are for the app of the dockyard.toml the dashboard was "
                             f"started with ({self.app or 'none'})")
        if action == "rollback" and re.fullmatch(r"v[0-9]{1,9}", arg):
            return ["rollback", arg]
        if action == "restart" and not arg:
            return ["restart"]
        if action == "backup" and arg in self.accessories:
            return ["backup", arg]
        if action == "renew" and not arg:
            return ["certs", "renew"]
        raise ValueError(f"not an action the dashboard runs: {action} {arg}".strip())

    def base(self) -> list[str]:
        assert self.config is not None
        return [sys.executable, "-m", "dockyard", "-c", str(self.config)]


def _static(name: str) -> bytes:
    return resources.files("dockyard.dashboard").joinpath("static", name).read_bytes()


class Guarded:
    """ASGI middleware: every request through the Guard; every answer with HEADERS."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        verdict = self.guard.check(scope["method"], scope["path"],
                                   scope.get("query_string", b"").decode("latin-1"), headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if verdict.status == 303:
            response: Response = RedirectResponse(verdict.redirect, status_code=303)
            response.headers["set-cookie"] = self.guard.cookie()
            await response(scope, receive, send_with_headers)
            return
        if verdict.status:
            await PlainTextResponse(verdict.reason + "\n", status_code=verdict.status)(
                scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def make_app(collectors: list[Collector], guard: Guard, actions: Actions) -> ASGIApp:
    """The ASGI app: pages, JSON, events, actions. ``collectors``: one per server, the
    dockyard.toml's first."""
    cache: dict[str, Any] = {"overview": None, "at": 0.0}
    cache_lock = threading.Lock()
    collector = collectors[0]

    def overview(max_age: float = EVENT_INTERVAL_S) -> dict[str, Any]:
        """Every server's apps; several tabs share one read per interval. A page takes what
        was read last (its first paint waits for no round trip), the events bring news."""
        with cache_lock:
            if cache["overview"] is None or time.monotonic() - cache["at"] >= max_age:
                views = [c.overview() for c in collectors]
                merged = dict(views[0])
                merged["apps"] = [{**a, "host": v["host"]} for v in views for a in v["apps"]]
                merged["apps"].sort(key=lambda a: (not a["problems"] and not a["busy"],
                                                   a["name"]))
                merged["host"] = ", ".join(v["host"] for v in views)
                cache["overview"] = merged
                cache["at"] = time.monotonic()
            return dict(cache["overview"])

    def pick(request: Request) -> Collector:
        wanted = request.query_params.get("host", "")
        return next((c for c in collectors if c.runner.host.label == wanted), collector)

    async def run(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def page_overview(request: Request) -> Response:
        data = await run(overview, float("inf"))
        return HTMLResponse(render_page("Overview", overview_html(data), guard, "overview",
                                        data))

    async def page_app(request: Request) -> Response:
        name = request.path_params["name"]
        data = await run(pick(request).app, name)
        return HTMLResponse(render_page(name, app_html(data, actions), guard, "app", data))

    async def page_history(request: Request) -> Response:
        data = await run(collector.history)
        return HTMLResponse(render_page("History", history_html(data), guard, "history",
                                        {"entries": data}))

    async def api_overview(request: Request) -> Response:
        return JSONResponse(await run(overview))

    async def api_app(request: Request) -> Response:
        return JSONResponse(await run(pick(request).app, request.path_params["name"]))

    async def api_stats(request: Request) -> Response:
        return JSONResponse(await run(pick(request).stats, request.path_params["name"]))

    async def api_logs(request: Request) -> Response:
        name = request.path_params["container"]
        if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,200}", name):
            return PlainTextResponse("not a container name\n", status_code=400)
        return JSONResponse(await run(pick(request).logs, name))

    async def events(request: Request) -> Response:
        app_name = request.query_params.get("app", "")
        source = pick(request)

        async def stream() -> AsyncIterator[bytes]:
            while not await request.is_disconnected():
                data: dict[str, Any] = {"overview": await run(overview)}
                if app_name:
                    data["metrics"] = source.metrics.series(app_name)
                    data["requests"] = source.metrics.recent(app_name)[:20]
                data["action"] = actions.running
                yield f"data: {json.dumps(data)}\n\n".encode()
                await asyncio.sleep(EVENT_INTERVAL_S)

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def action(request: Request) -> Response:
        try:
            body = await request.json()
            argv = actions.argv(str(body.get("action", "")), str(body.get("app", "")),
                                str(body.get("arg", "")))
        except (ValueError, AttributeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if not body.get("confirm"):
            done = await run(lambda: subprocess.run([*actions.base(), "explain", *argv],
                                                    capture_output=True, text=True,
                                                    timeout=120))
            return JSONResponse({"plan": done.stdout + done.stderr, "exit": done.returncode,
                                 "command": "dockyard " + " ".join(argv)})
        if actions.running.get("active"):
            return JSONResponse({"error": "another action is running"}, status_code=409)
        actions.running = {"active": True, "command": "dockyard " + " ".join(argv),
                           "lines": [], "exit": None}
        threading.Thread(target=_carry_out, args=(actions, argv), daemon=True).start()
        return JSONResponse({"started": actions.running["command"]})

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found\n", status_code=404)
        return Response(_static(name), media_type=STATIC[name],
                        headers={"Cache-Control": "max-age=3600"})

    routes = [Route("/", page_overview), Route("/app/{name}", page_app),
              Route("/history", page_history), Route("/api/overview", api_overview),
              Route("/api/app/{name}", api_app), Route("/api/stats/{name}", api_stats),
              Route("/api/logs/{container}", api_logs), Route("/events", events),
              Route("/api/action", action, methods=["POST"]),
              Route("/static/{name}", static)]
    return Guarded(Starlette(routes=routes), guard)


def _carry_out(actions: Actions, argv: list[str]) -> None:
    """The action itself: the CLI's lines as they come, for the page to show live."""
    proc = subprocess.Popen([*actions.base(), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        actions.running["lines"].append(line.rstrip("\n"))
    actions.running["exit"] = proc.wait()
    actions.running["active"] = False


# -- pages -----------------------------------------------------------------------------------

def render_page(title: str, body: str, guard: Guard, kind: str, data: Any) -> str:
    payload = escape(json.dumps(data), quote=True)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf" content="{guard.csrf}">
<title>{escape(title)} · Dockyard</title>
<link rel="stylesheet" href="/static/style.css">
<link rel="stylesheet" href="/static/uPlot.min.css">
</head><body data-page="{kind}" data-initial="{payload}">
<a class="skip" href="#main">Skip to content</a>
<header><nav aria-label="Pages"><a href="/"><b>Dockyard</b></a> <a href="/">Overview</a>
<a href="/history">History</a></nav></header>
<main id="main">{body}</main>
<script src="/static/uPlot.iife.min.js"></script>
<script src="/static/app.js"></script>
</body></html>"""


def _badge(ok: bool, text: str) -> str:
    sign = "✔" if ok else "✖"
    return f'<span class="badge {"ok" if ok else "bad"}">{sign} {escape(text)}</span>'


def overview_html(data: dict[str, Any]) -> str:
    return (f'<h1>{escape(data["host"])}</h1><p id="summary">{_summary(data)}</p>'
            f'<section id="apps" aria-live="polite">{apps_html(data["apps"])}</section>')


def _summary(data: dict[str, Any]) -> str:
    apps = data["apps"]
    bad = [a for a in apps if a["problems"]]
    words = f"{len(apps)} apps, " + (f"{len(bad)} with problems" if bad else "all running")
    disk = data.get("disk", {})
    return escape(f"{words}; disk {disk.get('used_percent', 0)}% used")


def apps_html(apps: list[dict[str, Any]]) -> str:
    if not apps:
        return "<p>No app on this server yet: run <code>dockyard deploy</code>.</p>"
    cards = []
    for a in apps:
        procs = " ".join(_badge(p["running"] >= p["total"] and p["running"] > 0,
                                f"{name} {p['running']}/{p['total']}")
                         for name, p in a["processes"].items())
        domains = "".join(f"<li>{escape(d['name'])}"
                          + (f" <small>certificate: {escape(d['certificate'])}</small>"
                             if d["certificate"] else "") + "</li>" for d in a["domains"])
        backups = "".join(f"<li>{escape(k)}: last backup {escape(v)}</li>"
                          for k, v in a["backups"].items())
        jobs = "".join(f"<li>job {escape(k)}: {escape(v)}</li>" for k, v in a["jobs"].items())
        problems = "".join(f"<li>{escape(p)}</li>" for p in a["problems"])
        busy = (f'<p class="busy" role="status"><b>Now:</b> {escape(a["busy"])}</p>'
                if a["busy"] else "")
        last = a.get("last_change")
        change = (f"<p><small>last change: {escape(str(last['subcommand']))} by "
                  f"{escape(str(last['user']))} at {escape(str(last['time']))} "
                  f"({escape(str(last['outcome']))})</small></p>" if last else "")
        cards.append(
            f'<article class="app{" problem" if a["problems"] else ""}" '
            f'data-app="{escape(a["name"])}">'
            f'<h2><a href="/app/{escape(a["name"])}?host={escape(a.get("host", ""))}">'
            f'{escape(a["name"])}</a> '
            f'<span class="release">{escape(a["release"])}</span> '
            f'{_badge(not a["problems"], a["health"])}</h2>{busy}'
            f"<p>{procs}</p>"
            + (f'<ul class="problems" aria-label="problems">{problems}</ul>' if problems else "")
            + (f"<ul>{domains}</ul>" if domains else "")
            + (f"<ul>{backups}{jobs}</ul>" if backups or jobs else "")
            + change + "</article>")
    return "".join(cards)


def app_html(data: dict[str, Any], actions: Actions) -> str:
    name = data["name"]
    mine = actions.app == name and actions.config is not None
    rows = []
    for r in data["releases"]:
        when = escape(str(r.get("created_at") or ""))
        took = f" · took {r['seconds']:.1f}s" if r.get("seconds") else ""
        button = (f'<button type="button" data-action="rollback" data-arg="{r["name"]}">'
                  f"Roll back to {r['name']}</button>"
                  if mine and r.get("served") and r["number"] != data["current"] else "")
        error = (f'<details><summary>why it failed</summary><pre>{escape(str(r["error"]))}'
                 "</pre></details>" if r.get("error") else "")
        commit = escape(str(r.get("git_commit") or "")[:10])
        rows.append(f'<li class="release {escape(str(r["outcome"]))}"><b>{r["name"]}</b> '
                    f'{escape(str(r["kind"]))} · {escape(str(r["outcome"]))} · {when}{took} · '
                    f'{escape(str(r.get("user") or ""))}'
                    + (f" · <code>{commit}</code>" if commit else "")
                    + f" {button}{error}</li>")
    containers = "".join(
        f'<tr><td>{escape(c["process"])}</td><td><button type="button" class="link" '
        f'data-logs="{escape(c["name"])}">{escape(c["name"])}</button></td>'
        f'<td>v{c["release"]}</td><td>{escape(c["state"])}</td><td>{escape(c["status"])}</td></tr>'
        for c in data["containers"])
    accessories = "".join(
        f'<tr><td>{escape(a["name"])}</td><td>{escape(a["kind"])}</td>'
        f'<td>{escape(a["state"])}</td><td>{escape(a["status"])}</td><td>'
        + (f'<button type="button" data-action="backup" data-arg="{escape(a["name"])}">'
           "Back up now</button>" if mine else "") + "</td></tr>"
        for a in data.get("accessories", []))
    controls = ('<p><button type="button" data-action="restart">Restart</button> '
                '<button type="button" data-action="renew">Renew certificates</button></p>'
                if mine else "<p><small>Actions are offered for the app of the dockyard.toml "
                "the dashboard was started with.</small></p>")
    return f"""<h1>{escape(name)} <span class="release">v{data["current"] or "-"}</span></h1>
{controls}
<section aria-labelledby="traffic"><h2 id="traffic">Traffic, last hour</h2>
<div class="charts"><figure><figcaption>Requests per second (and 4xx, 5xx)</figcaption>
<div id="chart-rate" role="img" aria-label="request rate chart"></div></figure>
<figure><figcaption>Latency p50 / p95 (ms)</figcaption>
<div id="chart-latency" role="img" aria-label="latency chart"></div></figure></div>
<p id="points" class="muted"></p></section>
<section aria-labelledby="rel"><h2 id="rel">Releases</h2><ol class="timeline">{"".join(rows)}
</ol></section>
<section aria-labelledby="ctr"><h2 id="ctr">Containers</h2><table><thead><tr><th>process</th>
<th>container (logs)</th><th>release</th><th>state</th><th>status</th></tr></thead>
<tbody>{containers}</tbody></table>
<p><button type="button" id="load-stats">CPU and memory now</button></p><div id="stats"></div>
{"<h3>Accessories</h3><table><tbody>" + accessories + "</tbody></table>" if accessories else ""}
</section>
<section aria-labelledby="req"><h2 id="req">Last requests</h2><table><thead><tr><th>time</th>
<th>status</th><th>request</th><th>ms</th></tr></thead><tbody id="requests"></tbody></table>
</section>
<section aria-labelledby="lg"><h2 id="lg">Logs</h2><label>Filter <input id="log-filter"
type="search"></label> <span id="log-name" class="muted"></span><pre id="logs"></pre></section>
<div id="dialog" role="dialog" aria-modal="true" aria-labelledby="dialog-title" hidden>
<h2 id="dialog-title"></h2><pre id="plan"></pre>
<p><button type="button" id="confirm">Run it</button> <button type="button" id="cancel">
Cancel</button></p></div>
<section id="action" aria-live="polite"></section>"""


def history_html(entries: list[dict[str, Any]]) -> str:
    items = "".join(
        f'<li class="{"ok" if e["outcome"] == "ok" else "bad"}"><b>{escape(str(e["time"]))}'
        f'</b> {escape(str(e["user"]))} ran <code>{escape(str(e["subcommand"]))}</code>'
        f' on {escape(str(e["app"] or "the server"))}: {e["steps"]} change(s), '
        f'{e["seconds"]:.1f}s · {escape(str(e["outcome"]))}</li>' for e in entries)
    return f'<h1>History</h1><ol class="timeline" id="history">{items}</ol>'


__all__ = ["Actions", "make_app"]
