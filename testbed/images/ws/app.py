"""GET /up: ok. GET /: "ws <APP_VERSION>". GET /headers: the X-Forwarded-* it received. GET /ws: a websocket that echoes text frames.
GET /events: server-sent events, one "tick N" a second, until the client goes away."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("APP_VERSION", "v1")
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def read_frame(sock_file) -> tuple[int, bytes] | None:
    head = sock_file.read(2)
    if len(head) < 2:
        return None
    opcode = head[0] & 0x0F
    length = head[1] & 0x7F
    if length == 126:
        length = struct.unpack(">H", sock_file.read(2))[0]
    elif length == 127:
        length = struct.unpack(">Q", sock_file.read(8))[0]
    mask = sock_file.read(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(sock_file.read(length)))
    return opcode, data


def frame(opcode: int, data: bytes) -> bytes:
    if len(data) < 126:
        return bytes([0x80 | opcode, len(data)]) + data
    return bytes([0x80 | opcode, 126]) + struct.pack(">H", len(data)) + data


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if self.path == "/events":
            return self.events()
        if self.path == "/headers":  # what the router added
            body = "".join(f"{k}: {self.headers.get(k, '')}\n" for k in (
                "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host")).encode()
        else:
            body = b"ok\n" if self.path == "/up" else f"ws {VERSION}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def websocket(self) -> None:
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            got = read_frame(self.rfile)
            if got is None:
                return
            opcode, data = got
            if opcode == 8:  # close
                self.wfile.write(frame(8, data[:2]))
                return
            if opcode == 9:  # ping
                self.wfile.write(frame(10, data))
            elif opcode == 1:
                self.wfile.write(frame(1, b"echo " + data))
            self.wfile.flush()

    def events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        n = 0
        try:
            while True:
                n += 1
                self.wfile.write(f"data: tick {n} {VERSION}\n\n".encode())
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            return


def main() -> None:
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
