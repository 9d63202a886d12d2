"""What the dashboard shows, read from the server over the SSH connection the CLI uses: the
same facts as `server status`, `releases`, `history` and the router's request log, batched
into one round trip per refresh. Nothing is installed or left running on the server.

Request metrics come from the router's in-memory request ring (router/logs.py): read once
when the dashboard starts (the last hour it holds), then followed (``show events requests
-w -n``) on a channel of the same connection, bucketed per app and 10 seconds: requests,
4xx, 5xx and the response times' p50 and p95.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from dockyard.certs import acme
from dockyard.docker import containers as ctr
from dockyard.host.command import Answer, Fact, fact
from dockyard.host.runner import Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import logs as router_logs
from dockyard.server import disk
from dockyard.state import audit, paths, snapshot
from dockyard.state.lock import parse_holder
from dockyard.state.releases import read_state

BUCKET_S = 10
HISTORY_S = 3600
CERT_TTL = 600
#: the commands that make a release (their audit entry says how long they took)
RELEASING = ("deploy", "rollback", "restart", "env set", "env unset", "env")


def _epoch(stamp: str) -> float:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def percentile(values: list[int], q: float) -> int:
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Bucket:
    requests: int = 0
    client_errors: int = 0
    server_errors: int = 0
    took: list[int] = field(default_factory=list)


class Metrics:
    """Per app: 10-second buckets of the last hour, and the last requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, dict[int, Bucket]] = defaultdict(dict)
        self.last: dict[str, deque[dict[str, object]]] = defaultdict(lambda: deque(maxlen=50))
        self.seen = 0

    def add(self, request: router_logs.Request) -> None:
        if request.event or not request.app:
            return
        at = _epoch(request.time)
        if at < time.time() - HISTORY_S:
            return
        key = int(at // BUCKET_S) * BUCKET_S
        with self.lock:
            bucket = self.buckets[request.app].setdefault(key, Bucket())
            bucket.requests += 1
            if 400 <= request.status < 500:
                bucket.client_errors += 1
            elif request.status >= 500 or request.status < 0:
                bucket.server_errors += 1
            if request.took_ms >= 0:
                bucket.took.append(request.took_ms)
            self.last[request.app].append({"time": request.time, "status": request.status,
                                           "method": request.method, "path": request.path,
                                           "ms": request.took_ms})
            self.seen += 1

    def series(self, app: str) -> dict[str, list[float]]:
        """Columns for the charts: time, req/s, 4xx/s, 5xx/s, p50 ms, p95 ms."""
        cutoff = time.time() - HISTORY_S
        with self.lock:
            items = sorted((k, b) for k, b in self.buckets.get(app, {}).items() if k >= cutoff)
        out: dict[str, list[float]] = {"t": [], "rate": [], "e4": [], "e5": [], "p50": [],
                                       "p95": []}
        for key, b in items:
            out["t"].append(key)
            out["rate"].append(round(b.requests / BUCKET_S, 2))
            out["e4"].append(round(b.client_errors / BUCKET_S, 2))
            out["e5"].append(round(b.server_errors / BUCKET_S, 2))
            out["p50"].append(percentile(b.took, 0.5))
            out["p95"].append(percentile(b.took, 0.95))
        return out

    def recent(self, app: str) -> list[dict[str, object]]:
        with self.lock:
            return list(reversed(self.last.get(app, [])))


def _locks() -> Fact[dict[str, str]]:
    """Which apps' locks are held now, and by what ("deploy running: me@laptop since ...")."""
    script = (f'for f in {paths.ROOT}/apps/*/lock; do [ -e "$f" ] || continue; '
              'app=${f%/lock}; app=${app##*/}; '
              'if ! flock -n "$f" true; then printf "%s\\t" "$app"; '
              'cat "$f.info" 2>/dev/null | tail -n 1; echo; fi; done; true')

    def parse(answer: Answer) -> dict[str, str]:
        out = {}
        for line in answer.out.splitlines():
            app, _, info = line.partition("\t")
            if app:
                holder = parse_holder(info)
                out[app] = (f"{holder.command} running: {holder.user}@{holder.host} since "
                            f"{holder.since}" if holder else "a command holds the lock")
        return out

    return fact(["sh", "-c", script], parse, "which apps are busy now")


def _last_backups() -> Fact[dict[str, str]]:
    """APP/ACCESSORY -> the newest backup file's name (its time is in the name)."""
    root = f"{paths.ROOT}/backups"
    script = (f'cd {root} 2>/dev/null || exit 0; for d in */*/; do '
              'f=$(ls -1 "$d" 2>/dev/null | grep -v "\\.sha256$" | sort | tail -n 1); '
              '[ -n "$f" ] && printf "%s\\t%s\\n" "${d%/}" "$f"; done; true')

    def parse(answer: Answer) -> dict[str, str]:
        return dict(line.split("\t", 1) for line in answer.out.splitlines() if "\t" in line)

    return fact(["sh", "-c", script], parse, "every accessory's newest backup")


def _accessories() -> Fact[dict[str, list[str]]]:
    """APP -> its accessories' names (every container labelled as one)."""
    def parse(answer: Answer) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for line in sorted(set(answer.out.split())):
            app, _, name = line.partition("/")
            if app and name:
                out[app].append(name)
        return dict(out)

    return fact(["docker", "ps", "-a", "--filter", "label=dockyard.accessory", "--format",
                 '{{.Label "dockyard.app"}}/{{.Label "dockyard.accessory"}}'], parse,
                "every app's accessories")


def _backup_time(file: str) -> str:
    """A backup file's time from its name (20261202T031500Z-...), or "none yet"."""
    stamp = file[:16]
    if len(stamp) == 16 and stamp[8] == "T" and stamp[:8].isdigit():
        return (f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[9:11]}:{stamp[11:13]} UTC "
                f"({file[17:].split('.')[0]})")
    return "none yet"


def _cron_last() -> Fact[dict[str, str]]:
    """APP/JOB -> its last run's record (start, exit, seconds)."""
    script = (f'cd {paths.ROOT}/apps 2>/dev/null || exit 0; for f in */cron/runs/*/index; do '
              '[ -f "$f" ] || continue; app=${f%%/*}; job=${f%/index}; job=${job##*/}; '
              'printf "%s/%s\\t%s\\n" "$app" "$job" "$(tail -n 1 "$f")"; done; true')

    def parse(answer: Answer) -> dict[str, str]:
        out = {}
        for line in answer.out.splitlines():
            key, _, record = line.partition("\t")
            parts = record.split("\t")
            if len(parts) >= 3:
                out[key] = (f"{'ok' if parts[1] == '0' else 'exit ' + parts[1]} at {parts[0]} "
                            f"({parts[2]}s)")
        return out

    return fact(["sh", "-c", script], parse, "every scheduled job's last run")


class Collector:
    """Reads for the pages; one Runner (its SSH connection), used by one thread at a time."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.lock = threading.Lock()
        self.metrics = Metrics()
        self.backends: dict[str, str] = {}
        self.reads = 0
        self._stop = threading.Event()
        self._certs: dict[str, tuple[float, str]] = {}

    # -- the overview ------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        with self.lock:
            status, routes, history, certs, backups, jobs, accessories, locks = \
                self.runner.read(disk.status(), snapshot.routes(), audit.read(400),
                                 acme.status(), _last_backups(), _cron_last(), _accessories(),
                                 _locks())
            self.reads += 1
        self.backends = {r.backend: r.app for r in routes.routes}
        cert_of = {name: f"{result} at {when}" + (f": {message}" if message else "")
                   for name, (when, result, message) in certs.items()}
        for route in routes.routes:
            for domain in acme.tls_domains(route.domains, route.tls):
                expiry = self._expiry(domain)
                cert_of[domain] = (f"expires {expiry}" if expiry else "none yet") + (
                    f"; last renewal {cert_of[domain]}" if domain in cert_of else "")
        out = []
        for app in status.apps:
            last_change = next((e for e in reversed(history) if e.app == app.name), None)
            problems = []
            if app.health not in ("running",):
                problems.append(app.health)
            failed_jobs = {k: v for k, v in jobs.items() if k.startswith(f"{app.name}/")
                           and not v.startswith("ok")}
            problems += [f"job {k.split('/', 1)[1]}: {v}" for k, v in failed_jobs.items()]
            problems += [f"certificate of {d}: {cert_of[d]}" for d in app.domains
                         if cert_of.get(d, "").startswith("failed")]
            out.append({
                "name": app.name, "release": app.release, "health": app.health,
                "processes": {p: {"running": up, "total": total}
                              for p, (up, total) in sorted(app.processes.items())},
                "domains": [{"name": d, "certificate": cert_of.get(d, "")} for d in app.domains],
                "backups": {name: _backup_time(backups.get(f"{app.name}/{name}", ""))
                            for name in accessories.get(app.name, [])},
                "jobs": {k.split("/", 1)[1]: v for k, v in jobs.items()
                         if k.startswith(f"{app.name}/")},
                "busy": locks.get(app.name, ""),
                "last_change": {"subcommand": last_change.subcommand, "user": last_change.user,
                                "time": last_change.time, "outcome": last_change.outcome,
                                "seconds": last_change.took_s} if last_change else None,
                "problems": problems,
            })
        out.sort(key=lambda a: (not a["problems"] and not a["busy"], a["name"]))
        return {"host": self.runner.host.label, "apps": out,
                "disk": {"used_percent": status.used_percent, "warnings": status.warnings()},
                "time": time.time()}

    def _expiry(self, domain: str) -> str:
        """The served certificate's notAfter, read through the Runtime API at most every
        CERT_TTL seconds per name."""
        at, value = self._certs.get(domain, (0.0, ""))
        if time.monotonic() - at < CERT_TTL:
            return value
        with self.lock:
            found = api.parse_ssl_cert(self.runner.api(
                api.show_ssl_cert(rc.cert_path(domain)), check=False)).get("notAfter", "")
        self._certs[domain] = (time.monotonic(), found)
        return found

    # -- one app -----------------------------------------------------------------------------
    def app(self, name: str) -> dict[str, Any]:
        with self.lock:
            state, containers, history = self.runner.read(
                read_state(name), snapshot.app_containers(name), audit.read(400))
            self.reads += 1
        releases = [{**asdict(r), "name": r.name, "served": r.served}
                    for r in reversed(state.releases)]
        made = [e for e in history if e.app == name and e.subcommand in RELEASING]
        for release in releases:
            release.pop("extra", None)
            release.pop("env_hash", None)
            # the command that made it: its audit entry, the nearest in time
            start = _epoch(str(release["created_at"] or ""))
            entry = min((e for e in made if abs(start - _epoch(e.time)) < 600),
                        key=lambda e: abs(start - _epoch(e.time)), default=None)
            release["seconds"] = entry.took_s if entry is not None else None
        return {"name": name, "current": state.current, "releases": releases,
                "containers": [{"name": c.name, "process": c.process, "release": c.release,
                                "state": c.state, "status": c.status}
                               for c in containers.containers if c.process],
                "accessories": [{"name": a.name, "kind": a.kind, "state": a.state,
                                 "status": a.status} for a in containers.accessories.values()],
                "metrics": self.metrics.series(name),
                "requests": self.metrics.recent(name)}

    def stats(self, name: str) -> list[dict[str, str]]:
        """docker stats of the app's containers (a second: on demand)."""
        argv = ["sh", "-c", 'ids=$(docker ps -q --filter "label=dockyard.app=$1"); '
                '[ -n "$ids" ] && docker stats --no-stream --format '
                '"{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}" $ids; true', "stats", name]
        with self.lock:
            out = self.runner.read_one(fact(argv, lambda a: a.out, f"{name}'s CPU and memory"))
            self.reads += 1
        rows = []
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) == 3:
                rows.append({"container": parts[0], "cpu": parts[1], "memory": parts[2]})
        return rows

    def logs(self, container: str, lines: int = 200) -> list[str]:
        with self.lock:
            found = self.runner.read_one(ctr.logs_fact(container, lines))
            self.reads += 1
        return [self.runner.redact(line) for line in found]

    def history(self, lines: int = 400) -> list[dict[str, object]]:
        with self.lock:
            entries = self.runner.read_one(audit.read(lines))
            self.reads += 1
        return [e.as_dict() for e in reversed(entries)]

    # -- the request log ---------------------------------------------------------------------
    def start_requests(self) -> None:
        """Backfill from the ring, then follow it in a thread (stops with the dashboard)."""
        threading.Thread(target=self._follow, name="requests", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _follow(self) -> None:
        try:
            with self.lock:
                text = self.runner.api(router_logs.show("requests"), check=False)
            for request in router_logs.parse(text, self.backends):
                self.metrics.add(request)
        except Exception:  # no router yet: the charts stay empty
            pass
        while not self._stop.is_set():
            try:
                call = api.ApiCall("show events requests -w -n",
                                   "follow the router's request log", changes=False)
                for line in self.runner.api_stream(call):
                    if self._stop.is_set():
                        return
                    parsed = router_logs.parse_line(line, self.backends)
                    if parsed is not None:
                        self.metrics.add(parsed)
            except Exception:
                self._stop.wait(5)
