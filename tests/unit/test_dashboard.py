"""The dashboard's guard (token, host, origin, CSRF) and its metrics, without a server."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from dockyard.dashboard.collect import Metrics, percentile
from dockyard.dashboard.guard import Guard
from dockyard.dashboard.server import Actions
from dockyard.router.logs import Request

PORT = 18777


def check(guard: Guard, *, method: str = "GET", path: str = "/", query: str = "",
          **headers: str) -> int:
    base = {"host": f"127.0.0.1:{PORT}"}
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return guard.check(method, path, query, base).status


def test_every_path_needs_the_token_and_the_token_leaves_the_address() -> None:
    guard = Guard(PORT)
    for path in ("/", "/app/x", "/api/overview", "/static/app.js", "/events"):
        assert check(guard, path=path) == 401
    verdict = guard.check("GET", "/app/x", f"token={guard.token}&host=a",
                          {"host": f"127.0.0.1:{PORT}"})
    assert verdict.status == 303 and verdict.redirect == "/app/x?host=a" and verdict.set_cookie
    assert "HttpOnly" in guard.cookie() and "SameSite=Strict" in guard.cookie()
    assert check(guard, query="token=wrong") == 401
    cookie = f"dockyard_dashboard={guard.token}"
    assert check(guard, cookie=cookie) == 0
    assert check(guard, cookie="dockyard_dashboard=nope") == 401


@pytest.mark.parametrize(("headers", "status"), [
    ({"host": "evil.test:18777"}, 403),  # DNS rebinding
    ({"origin": "http://evil.test"}, 403),
    ({"sec_fetch_site": "cross-site"}, 403),
    ({"origin": f"http://localhost:{PORT}", "host": f"localhost:{PORT}"}, 0),
])
def test_other_hosts_and_origins_are_refused(headers: dict[str, str], status: int) -> None:
    guard = Guard(PORT)
    assert check(guard, cookie=f"dockyard_dashboard={guard.token}", **headers) == status


def test_an_action_needs_the_pages_csrf_header() -> None:
    guard = Guard(PORT)
    cookie = f"dockyard_dashboard={guard.token}"
    assert check(guard, method="POST", path="/api/action", cookie=cookie) == 403
    assert check(guard, method="POST", path="/api/action", cookie=cookie,
                 x_dockyard_csrf="forged") == 403
    assert check(guard, method="POST", path="/api/action", cookie=cookie,
                 x_dockyard_csrf=guard.csrf) == 0


def test_actions_are_the_safe_ones_on_the_configs_app(tmp_path: object) -> None:
    from pathlib import Path

    actions = Actions(Path("/x/dockyard.toml"), "shop", ["db"])
    assert actions.argv("rollback", "shop", "v3") == ["rollback", "v3"]
    assert actions.argv("restart", "shop", "") == ["restart"]
    assert actions.argv("backup", "shop", "db") == ["backup", "db"]
    assert actions.argv("renew", "shop", "") == ["certs", "renew"]
    for bad in (("rollback", "shop", "v3; rm -rf /"), ("remove", "shop", ""),
                ("backup", "shop", "other"), ("restart", "blog", ""),
                ("rollback", "shop", "--force")):
        with pytest.raises(ValueError):
            actions.argv(*bad)


def _request(app: str, status: int, took: int, at: float) -> Request:
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return Request(stamp, app, status, "GET", "/", took, "127.0.0.1", "----", False)


def test_metrics_bucket_rate_errors_and_percentiles() -> None:
    metrics = Metrics()
    now = time.time()
    start = now - now % 10 - 20  # the start of a bucket, 20 s ago
    for i in range(100):
        metrics.add(_request("shop", 200 if i < 90 else (404 if i < 95 else 502), i + 1,
                             start + 1))
    metrics.add(_request("shop", 200, 5, now - 7200))  # older than the hour: left out
    series = metrics.series("shop")
    assert series["t"] == [start]
    assert series["rate"] == [10.0] and series["e4"] == [0.5] and series["e5"] == [0.5]
    assert series["p50"] == [51] and series["p95"] == [96]
    assert metrics.recent("shop")[0]["status"] == 502
    assert percentile([], 0.5) == 0 and metrics.series("other")["t"] == []


def test_backup_times_are_read_from_their_names() -> None:
    from dockyard.dashboard.collect import _backup_time

    assert _backup_time("20261202T031500Z-scheduled.pgdump") == \
        "2026-12-02 03:15 UTC (scheduled)"
    assert _backup_time("") == "none yet" and _backup_time("garbage") == "none yet"
