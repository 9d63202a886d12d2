"""Notifications: a JSON body POSTed to ``[notify] webhook`` and given on stdin to
``[notify] command`` when a deploy starts, succeeds or fails, and when a rollback does
(docs/day-two.md documents the body). The server sends its own events (a scheduled job or
backup failed) with scripts/notify.sh.

Sending never fails or slows a deploy past ``timeout``: each notification goes in a thread
of its own, and the command waits for them at most ``timeout`` after the last was sent. The
body carries no secret: names, releases, and error messages passed through the runner's
redaction.
"""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dockyard import __version__
from dockyard.config.model import NotifyConfig

EVENTS = ("deploy.started", "deploy.succeeded", "deploy.failed", "rollback.succeeded",
          "rollback.failed", "backup.failed", "cron.failed", "certificate.renewal_failed")


def body(event: str, app: str, host: str, **fields: object) -> dict[str, object]:
    """The JSON body (docs/notify.md): fixed keys first, then the event's own."""
    assert event in EVENTS, event
    return {"event": event, "app": app, "host": host,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "user": getpass.getuser(), "source": "laptop", "machine": socket.gethostname(),
            "dockyard": __version__, **fields}


@dataclass
class Notifier:
    config: NotifyConfig
    app: str
    host: str
    redact: Callable[[str], str] = lambda text: text
    destination: str | None = None
    _threads: list[tuple[str, str, threading.Thread]] = field(default_factory=list)
    _last_sent: float = 0.0
    #: what each send did, for --verbose and the tests: (event, target, outcome)
    results: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def wanted(self) -> bool:
        return bool(self.config.webhook or self.config.command)

    def send(self, event: str, **fields: object) -> None:
        if not self.wanted:
            return
        message = fields.get("message")
        if isinstance(message, str):
            fields["message"] = self.redact(message)[:2000]
        data = json.dumps(body(event, self.app, self.host, destination=self.destination,
                               **fields)).encode()
        for name, target, wanted in (("webhook", self._post, self.config.webhook),
                                     ("command", self._run, self.config.command)):
            if not wanted:
                continue
            thread = threading.Thread(target=target, args=(event, data), daemon=True)
            thread.start()
            self._threads.append((event, name, thread))
        self._last_sent = time.monotonic()

    def _post(self, event: str, data: bytes) -> None:
        url = self.config.webhook
        if not url:
            return
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"dockyard/{__version__}"})
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout) as answer:
                self.results.append((event, "webhook", f"HTTP {answer.status}"))
        except Exception as exc:  # any failure: a webhook never fails a deploy
            self.results.append((event, "webhook", f"failed: {type(exc).__name__}"))

    def _run(self, event: str, data: bytes) -> None:
        argv = self.config.command
        if not argv:
            return
        try:
            done = subprocess.run(argv, input=data, capture_output=True,
                                  timeout=self.config.timeout, check=False)
            self.results.append((event, "command", f"exit {done.returncode}"))
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.results.append((event, "command", f"failed: {type(exc).__name__}"))

    def close(self) -> None:
        """Wait for the sends, at most ``timeout`` after the last one started."""
        deadline = self._last_sent + self.config.timeout
        for _, _, thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for event, name, thread in self._threads:
            if thread.is_alive():  # left behind: this command does not wait for it
                self.results.append((event, name, f"no answer within "
                                     f"{self.config.timeout:g}s"))
        self._threads = []
