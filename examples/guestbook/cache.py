"""An optional Redis counter (REDIS_HOST set: examples/compose runs one), spoken in Redis's
own protocol over a socket: no client library to install. Redis being away never fails a
page: the count is then left out."""

from __future__ import annotations

import os
import socket


def incr(key: str) -> int | None:
    """INCR key; None without REDIS_HOST or when Redis does not answer."""
    host = os.environ.get("REDIS_HOST")
    if not host:
        return None
    try:
        with socket.create_connection((host, int(os.environ.get("REDIS_PORT", "6379"))),
                                      timeout=1) as conn:
            conn.sendall(f"*2\r\n$4\r\nINCR\r\n${len(key)}\r\n{key}\r\n".encode())
            answer = conn.makefile("rb").readline()
    except OSError:
        return None
    return int(answer[1:]) if answer.startswith(b":") else None
