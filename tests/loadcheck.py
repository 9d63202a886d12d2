"""Our own strict load checker for zero-downtime tests (zd-probe is the reference; this is
the project's).

Threads send requests to 127.0.0.1 while something happens: half reuse keep-alive
connections, half open a fresh connection per request; every other request is a POST. A
failed request is counted, never retried. Bounded in time and in count.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Report:
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    bodies: list[str] = field(default_factory=list)  # distinct bodies in the order seen
    max_gap: float = 0.0
    #: when each kind of failure was first and last seen (wall clock, to match audit lines)
    failed_at: dict[str, tuple[str, str]] = field(default_factory=dict)

    def versions(self) -> list[str]:
        return self.bodies

    def summary(self) -> str:
        return (f"ok={self.ok} failed={self.failed} errors={dict(self.errors)} "
                f"at={self.failed_at} max_gap={self.max_gap:.3f}s "
                f"bodies={self.bodies[:3]}…{self.bodies[-3:]}")


class Load:
    def __init__(self, port: int, host: str, *, threads: int = 4, path: str = "/",
                 max_seconds: float = 600, max_requests: int = 2_000_000,
                 posts: bool = True) -> None:
        self.port = port
        #: every other request a POST (False: GET only, for a static site)
        self.posts = posts
        self.host = host
        self.path = path
        self.threads = threads
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.report = Report()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_ok = 0.0
        self._workers: list[threading.Thread] = []
        self._count = 0

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        self._last_ok = self._started
        for i in range(self.threads):
            worker = threading.Thread(target=self._run, args=(i % 2 == 0,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=10)
        now = time.monotonic()
        with self._lock:
            self.report.max_gap = max(self.report.max_gap, now - self._last_ok)

    def _run(self, keep_alive: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        n = 0
        while not self._stop.is_set():
            if time.monotonic() - self._started > self.max_seconds:
                return
            with self._lock:
                if self._count >= self.max_requests:
                    return
                self._count += 1
            n += 1
            post = self.posts and n % 2 == 0
            try:
                if conn is None or not keep_alive:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                headers = {"Host": self.host}
                if post:
                    conn.request("POST", self.path, body=b"x=1", headers={
                        **headers, "Content-Type": "application/x-www-form-urlencoded"})
                else:
                    conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace").strip()
                if not 200 <= resp.status < 300:  # a POST that creates answers 201
                    self._fail(f"HTTP {resp.status}")
                else:
                    self._ok(body)
                if not keep_alive or resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as exc:
                self._fail(type(exc).__name__)
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _ok(self, body: str) -> None:
        now = time.monotonic()
        with self._lock:
            self.report.ok += 1
            self.report.max_gap = max(self.report.max_gap, now - self._last_ok)
            self._last_ok = now
            if not self.report.bodies or self.report.bodies[-1] != body:
                self.report.bodies.append(body)

    def _fail(self, kind: str) -> None:
        at = time.strftime("%H:%M:%S", time.gmtime())
        with self._lock:
            self.report.failed += 1
            self.report.errors[kind] += 1
            first = self.report.failed_at.get(kind, (at, at))[0]
            self.report.failed_at[kind] = (first, at)
