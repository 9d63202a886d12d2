"""The guestbook's web process: list entries (GET /), add one (POST /, a form or JSON),
entries as JSON (GET /entries.json), health (GET /up). Standard library + psycopg only."""

from __future__ import annotations

import html
import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from cache import incr
from db import connection

VERSION = os.environ.get("APP_VERSION", "dev")


def page() -> str:
    """The guestbook: the newest 20 entries and a form to sign it."""
    with connection() as conn:
        count = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        rows = conn.execute("SELECT name, message, created_at FROM entries "
                            "ORDER BY id DESC LIMIT 20").fetchall()
    visits = incr("visits")
    seen = f" · {visits} visits" if visits is not None else ""
    items = "".join(f"<li><b>{html.escape(n)}</b>: {html.escape(m)} "
                    f"<small>{t:%Y-%m-%d %H:%M}</small></li>" for n, m, t in rows)
    return (f"<!doctype html><title>guestbook {VERSION}</title>\n<h1>Guestbook</h1>\n"
            "<form method=post><input name=name placeholder=name> <input name=message "
            f"placeholder=message> <button>Sign</button></form>\n<p>{count} entries{seen}</p>"
            f"<ul>{items}</ul>\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as browsers and the router use it
    # a buffered writer: headers and body leave in one write (flushed after each request),
    # so a client that closes once it has the status line never meets a half-sent answer
    wbufsize = 1 << 16

    def log_message(self, format: str, *args: object) -> None:
        pass  # the router logs requests

    def handle(self) -> None:
        # a client may close its connection abruptly once it has the answer (a reset): that
        # ends the conversation, it is not an error worth a traceback in the app's logs
        try:
            super().handle()
        except (ConnectionResetError, BrokenPipeError):
            self.close_connection = True

    def _send(self, status: int, body: str, ctype: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/up":
            self._send(200, "ok\n")
        elif self.path == "/entries.json":
            with connection() as conn:
                rows = conn.execute("SELECT id, name, message FROM entries ORDER BY id").fetchall()
            self._send(200, json.dumps([{"id": r[0], "name": r[1], "message": r[2]}
                                        for r in rows]), "application/json")
        elif self.path == "/":
            self._send(200, page(), "text/html; charset=utf-8")
        else:
            self._send(404, "not found\n")

    def do_POST(self) -> None:
        if self.path != "/":
            self._send(404, "not found\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        if "json" in (self.headers.get("Content-Type") or ""):
            data = json.loads(raw or "{}")
            name = str(data.get("name", "probe"))
            message = str(data.get("message", json.dumps(data)))
        else:
            form = parse_qs(raw)
            name = form.get("name", ["anonymous"])[0]
            message = form.get("message", [""])[0]
        with connection() as conn:
            conn.execute("INSERT INTO entries (name, message) VALUES (%s, %s)",
                         (name[:100], message[:1000]))
        self._send(201, page(), "text/html; charset=utf-8")


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8000"))), Handler)
    server.daemon_threads = True
    # SIGTERM: stop accepting, let the router's drain finish in-flight requests, exit 0
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"guestbook {VERSION} listening on :{server.server_address[1]}")
    server.serve_forever()


if __name__ == "__main__":
    main()
