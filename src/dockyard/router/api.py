"""HAProxy Runtime API: the lines Dockyard sends, and parsers for what comes back.

Builders only: they return command lines; the Runner sends them (or prints them under
--dry-run). Everything a deploy changes in the router goes through here, so the router is
never reloaded or restarted by a deploy.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from dockyard.router import config as rc


@dataclass(frozen=True)
class ApiCall:
    line: str
    why: str = ""
    changes: bool = True
    #: what a failure of this call means (explain prints it)
    if_fails: str = ""


def _call(line: str, why: str = "", changes: bool = True, if_fails: str = "") -> ApiCall:
    if "\n" in line or ";" in line:
        raise ValueError(f"one Runtime API command per line: {line!r}")
    return ApiCall(line, why, changes, if_fails)


#: a failure while the new container is being put in its slot, before it gets traffic
BEFORE_TRAFFIC = ("the new container is removed and its slot parked; the release that "
                  "serves now keeps serving")


# -- queries -----------------------------------------------------------------------------

def show_stat(backend: str | None = None) -> ApiCall:
    """Every server's state and live sessions, or one backend's (a thirtieth of the bytes
    with 32 slots: a deploy polls it while the new container warms up)."""
    if backend is None:
        return _call("show stat -1 4 -1", "read every server's state and live sessions", False)
    return _call(f"show stat {backend} 4 -1", f"read the state of {backend}'s servers", False)


def show_servers_state(backend: str) -> ApiCall:
    return _call(f"show servers state {backend}", "read the servers' addresses and names", False)


def show_all_servers_state() -> ApiCall:
    """Every backend's slots (a cluster drain finds the slots of a node's tasks by address)."""
    return _call("show servers state", "read every slot's address and name", False)


def show_map(path: str) -> ApiCall:
    return _call(f"show map {path}", "read the router's current host names", False)


def show_ssl_cert(path: str) -> ApiCall:
    return _call(f"show ssl cert {path}", "which certificate the router serves for this name",
                 False)


def parse_ssl_cert(text: str) -> dict[str, str]:
    """``show ssl cert <file>``: {"Serial": ..., "notAfter": ..., "Issuer": ...}; empty when
    the router has no such certificate."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key.strip():
            out[key.strip()] = value.strip()
    return out if "Filename" in out else {}


def show_crt_list() -> ApiCall:
    return _call(f"show ssl crt-list {rc.CRT_LIST}", "which certificates are served by name",
                 False)


def parse_crt_list(text: str) -> set[str]:
    """``show ssl crt-list FILE``: the certificate files it lists."""
    return {line.split()[0] for line in text.split("\n") if line.startswith("/")}


def add_crt_list(cert: str) -> ApiCall:
    return _call(f"add ssl crt-list {rc.CRT_LIST} {cert}",
                 "serve this certificate again for its name (it was kept)")


def del_crt_list(cert: str) -> ApiCall:
    return _call(f"del ssl crt-list {rc.CRT_LIST} {cert}",
                 "stop serving this certificate: its name gets the default one on HTTPS")


def show_info() -> ApiCall:
    return _call("show info", "read the router's pid and uptime", False)


# -- changes -----------------------------------------------------------------------------

def set_server_fqdn(backend: str, server: str, container: str) -> ApiCall:
    return _call(f"set server {backend}/{server} fqdn {container}",
                 f"point router slot {backend}/{server} at container {container} (found "
                 "through Docker's DNS)")


def set_server_addr(backend: str, server: str, ip: str, port: int) -> ApiCall:
    """The container's address, set explicitly: the first health check must reach the new
    container itself, not whatever the slot pointed at before its new name resolves."""
    return _call(f"set server {backend}/{server} addr {ip} port {port}",
                 f"send this slot's checks and traffic to {ip}:{port} (the new container)",
                 if_fails=BEFORE_TRAFFIC)


def set_server_state(backend: str, server: str, state: str) -> ApiCall:
    why = {
        "ready": "the new container passed its health checks: send it requests",
        "drain": "stop sending new requests to the old container; in-flight ones finish",
        "maint": "take the old container out of the router completely",
    }[state]
    if_fails = {
        "ready": BEFORE_TRAFFIC,
        "drain": "the new release serves next to the old one until the command runs again "
                 "(it finishes the switch); no request fails",
        "maint": "the slot keeps its state; the next deploy parks it",
    }[state]
    return _call(f"set server {backend}/{server} state {state}", why, if_fails=if_fails)


def set_map(path: str, key: str, value: str) -> ApiCall:
    return _call(f"set map {path} {key} {value}", f"route {key} to {value}")


def add_map(path: str, key: str, value: str) -> ApiCall:
    return _call(f"add map {path} {key} {value}", f"route {key} to {value}")


def del_map(path: str, key: str) -> ApiCall:
    return _call(f"del map {path} {key}", f"stop routing {key}")


def maintenance(backend: str, *, on: bool) -> ApiCall:
    """An app in maintenance answers 503 with a short page (its servers stay as they are)."""
    if on:
        return _call(f"add map {rc.MAINTENANCE_MAP} {backend} 1",
                     f"{backend} answers 503 (maintenance) from now on")
    return _call(f"del map {rc.MAINTENANCE_MAP} {backend}", f"{backend} serves again")


def put_map(current: dict[str, str], path: str, key: str, value: str) -> list[ApiCall]:
    """Idempotent map update: set when present with another value, add when missing."""
    if key in current:
        return [] if current[key] == value else [set_map(path, key, value)]
    return [add_map(path, key, value)]


def set_server_health_down(backend: str, server: str) -> ApiCall:
    return _call(f"set server {backend}/{server} health down",
                 "count the new container as down until it passes its health checks, so no "
                 "request reaches it before it answers", if_fails=BEFORE_TRAFFIC)


def park_server(backend: str, server: str, *, named: bool = False) -> list[ApiCall]:
    """Retire a server slot: out of rotation, pointed at a closed port. A slot that carries
    a container name (from the on-disk config) is renamed to a name that always resolves,
    so the router stops asking Docker's DNS for a container that is gone."""
    calls = [set_server_state(backend, server, "maint"),
             _call(f"set server {backend}/{server} addr {rc.UNUSED_ADDR} port {rc.UNUSED_PORT}",
                   "point the slot at a closed port: nothing can ever reach it by mistake")]
    if named:
        calls.append(_call(f"set server {backend}/{server} fqdn {rc.PARKED_FQDN}",
                           "rename the slot to a name that always resolves (no DNS lookups "
                           "for a container that is gone)"))
    return calls


# -- parsing -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ServerStat:
    backend: str
    server: str
    status: str  # UP, DOWN, MAINT, DRAIN, "UP 1/2", "MAINT (resolution)", "no check"...
    sessions: int  # current sessions (in-flight requests/connections)
    queued: int
    check: str  # last check result, e.g. L7OK, L4CON
    check_desc: str
    address: str

    @property
    def up(self) -> bool:
        return self.status == "UP"

    @property
    def maint(self) -> bool:
        return self.status.startswith("MAINT")

    @property
    def serving(self) -> bool:
        """Takes new requests: UP, or UP but failing checks ("UP 1/3")."""
        return self.status.startswith("UP")


def parse_stat(text: str) -> dict[tuple[str, str], ServerStat]:
    """``show stat -1 4 -1`` CSV -> {(backend, server): ServerStat}."""
    body = text.lstrip()
    if body.startswith("# "):
        body = body[2:]
    out: dict[tuple[str, str], ServerStat] = {}
    for row in csv.DictReader(io.StringIO(body)):
        backend, server = row.get("pxname", ""), row.get("svname", "")
        if not backend or server in ("FRONTEND", "BACKEND", ""):
            continue
        out[(backend, server)] = ServerStat(
            backend=backend, server=server, status=row.get("status", ""),
            sessions=_int(row.get("scur")), queued=_int(row.get("qcur")),
            check=row.get("check_status", ""), check_desc=row.get("check_desc", ""),
            address=row.get("addr", ""),
        )
    return out


@dataclass(frozen=True)
class ServerState:
    """From ``show servers state``: used for each server slot's name (fqdn) and address.
    Whether a server takes traffic comes from ``show stat`` (ServerStat.status)."""

    backend: str
    server: str
    address: str
    op_state: int  # 0 stopped, 1 starting, 2 running, 3 stopping
    admin_state: int
    fqdn: str


def parse_servers_state(text: str) -> list[ServerState]:
    out = []
    header: list[str] = []
    for line in text.splitlines():
        if line.startswith("# "):
            header = line[2:].split()
            continue
        parts = line.split()
        if not header or len(parts) < len(header) - 1 or not parts[0].isdigit():
            continue
        row = dict(zip(header, parts, strict=False))
        out.append(ServerState(
            backend=row.get("be_name", ""), server=row.get("srv_name", ""),
            address=row.get("srv_addr", ""), op_state=_int(row.get("srv_op_state")),
            admin_state=_int(row.get("srv_admin_state")), fqdn=row.get("srv_fqdn", "-"),
        ))
    return out


def parse_map(text: str) -> dict[str, str]:
    """``show map`` lines are ``<ref> <key> <value>``."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].startswith("0x"):
            out[parts[1]] = parts[2]
    return out


def parse_info(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


_API_ERRORS = ("No such", "Unknown", "Invalid", "not found", "denied", "failed", "Cannot",
               "Require", "Usage", "unexpected", "Missing", "can't", "Can't")


def is_api_error(answer: str) -> bool:
    """HAProxy answers a refused command with a sentence, not a code."""
    return any(marker in answer for marker in _API_ERRORS)
