"""The router's HAProxy configuration and map files, rendered from Dockyard's state.

The on-disk files are regenerated from state (never edited in place), so after a router
restart, a dockerd restart or a reboot the router comes back routing every app to its current
release without any Dockyard command. Deploys never reload it: they change the running
router through the Runtime API, and rewrite these files so the next start agrees.

Why a pool of pre-declared backends: adding a backend needs a reload, and a reload closes
idle keep-alive connections. So the config declares ``SLOTS`` backends up front, each with
``SERVERS`` server slots; an app is given a free backend the first time it deploys, a host
name reaches it through ``hosts.map`` (changed at run time), and each health check reads its
path and Host header from two more maps keyed by server name (so a new release with a new
health path never changes how the old one is checked).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

#: How many apps one server's router can serve, and web containers per app at once: the
#: serving release's and the next one's during a start-first switch, at the most replicas
#: [web] replicas allows (in a cluster: tasks, on every node), and a few being retired.
SLOTS = 32
MAX_REPLICAS = 16
SERVERS = 2 * MAX_REPLICAS + 4

#: Inside the container HAProxy runs as a non-root user (like the official image), so it
#: listens on unprivileged ports; Docker publishes them on the server's [proxy] ports.
HTTP_PORT = 8080
HTTPS_PORT = 8443
CONFIG_DIR = "/usr/local/etc/haproxy"
RUN_DIR = "/run/dockyard"
#: The Runtime API: a UNIX socket in a directory mounted from the server, reached through an
#: SSH stream-local forward (or directly for host = "local"). Never published on a port.
API_SOCKET = f"{RUN_DIR}/admin.sock"
HOSTS_MAP = f"{CONFIG_DIR}/hosts.map"
HEALTH_URI_MAP = f"{CONFIG_DIR}/health_uri.map"
HEALTH_HOST_MAP = f"{CONFIG_DIR}/health_host.map"
#: Backends (apps) in maintenance (a restore runs): the router answers 503 with a short page.
MAINTENANCE_MAP = f"{CONFIG_DIR}/maintenance.map"
#: Backends of apps that run on a cluster -> how long a GET/HEAD waits for a task's answer
#: (ms) before it is retried on another task. Changed at run time like the other maps.
CLUSTER_MAP = f"{CONFIG_DIR}/cluster.map"
MAINTENANCE_PAGE = f"{CONFIG_DIR}/maintenance.html"
DEFAULT_CERT = f"{CONFIG_DIR}/certs/default.pem"
#: Certificates obtained over ACME: listed here (loaded at start), added at run time through
#: the Runtime API (add ssl crt-list), never by a reload.
CERTS_DIR = f"{CONFIG_DIR}/certs"
CRT_LIST = f"{CERTS_DIR}/crt-list"
#: Host names whose certificate is installed: plain HTTP to them is redirected to HTTPS.
TLS_MAP = f"{CONFIG_DIR}/tls.map"
#: The Runtime API on the router's loopback, for the certificate container, which shares the
#: router's network namespace (nothing is published; nothing outside that namespace sees it).
API_LOOPBACK = "127.0.0.1:9999"
#: Where the ACME client answers HTTP-01 challenges while it orders, in the same namespace.
ACME_LOOPBACK = "127.0.0.1:8402"
ACME_PATH = "/.well-known/acme-challenge/"
#: A name that always resolves on every network the router is on: retired servers point at
#: it, so HAProxy never keeps asking Docker's DNS for a container that no longer exists.
PARKED_FQDN = "dockyard-router"
#: Servers never used yet carry an address literal: nothing to resolve.
UNUSED_ADDR = "127.0.0.1"
#: ... and a closed port: a slot that is not in use can never reach anything.
UNUSED_PORT = 1
#: Where a cluster slot points until Docker's DNS gives it a task: TEST-NET-1 (RFC 5737),
#: never routed. Not 127.0.0.1: with the app's port that is the router's own frontend, whose
#: answer would pass the slot's health check and loop requests back into the router.
UNREACHABLE_ADDR = "192.0.2.1"


#: Mozilla's "intermediate" TLS 1.2 ciphers (TLS 1.3 suites are set separately).
CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])


#: The in-memory request log (two rings; `dockyard router logs` reads them).
REQUESTS_RING = "requests"
ERRORS_RING = "errors"
REQUESTS_RING_BYTES = 8 * 1024 * 1024  # about 40,000 requests at ~200 bytes a line
ERRORS_RING_BYTES = 2 * 1024 * 1024  # about 10,000 errors


#: Other nodes' routers a challenge may be passed on to (cluster), and the header that
#: marks a passed-on challenge (the receiving router asks only its own ACME client).
PEERS = 8
PEER_HEADER = "X-Dockyard-Peer"


def peer_names() -> list[str]:
    return [f"peer{i}" for i in range(1, PEERS + 1)]


def _peer_lines() -> str:
    return "".join(f"    server {name} {UNUSED_ADDR}:{UNUSED_PORT} disabled\n"
                   for name in peer_names())


def cert_path(domain: str) -> str:
    """A certificate's file as the router knows it."""
    return f"{CERTS_DIR}/{domain}.pem"


def backend_name(slot: int) -> str:
    return f"slot{slot:02d}"


def server_names(slot: int) -> list[str]:
    """Server names are unique across backends: health checks look up their path and Host
    header by server name, so each server (each release) is checked its own way."""
    return [f"{backend_name(slot)}-web{i}" for i in range(1, SERVERS + 1)]


@dataclass
class Route:
    """One app as the router sees it; stored as apps/<app>/route.json on the server."""

    app: str
    slot: int
    port: int
    domains: list[str] = field(default_factory=list)
    health_path: str = "/up"
    health_interval_ms: int = 1000
    health_timeout_ms: int = 2000
    #: server slot name -> container name, for the containers that serve now
    servers: dict[str, str] = field(default_factory=dict)
    #: serve the domains over HTTPS (certificates over ACME) when they allow it
    tls: bool = True
    #: for a site (`dockyard site add`): the service it forwards to, "host:PORT" or
    #: "CONTAINER:PORT"; empty for a Dockyard app
    site: str = ""
    #: the app runs on a swarm: its slots follow Docker's DNS (tasks.<service>), failed
    #: connections and unanswered GETs are retried on another task
    cluster: bool = False
    #: in a cluster: how long a GET or HEAD may wait for a task's answer before it is
    #: retried on another one (a node that vanished answers nothing)
    response_timeout_ms: int = 30000

    @property
    def backend(self) -> str:
        return backend_name(self.slot)

    def to_json(self) -> bytes:
        """route.json: one line, keys sorted (the routes digest hashes these bytes)."""
        data = asdict(self)
        if not self.cluster:  # one server: the file is byte for byte what it always was
            del data["cluster"], data["response_timeout_ms"]
        return (json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n").encode()

    @classmethod
    def from_json(cls, text: str) -> Route:
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def health_host(self) -> str:
        return self.domains[0] if self.domains else f"{self.app}.dockyard"


#: How the router names itself in the Via header of answers, behind a local web server.
VIA = "dockyard-router"


def render(routes: list[Route], *, socket_gid: int, hsts: bool = False,
           tunnel_timeout_s: float = 3600, behind_proxy: bool = False) -> str:
    """haproxy.cfg for these routes. Pure: same input, same text. ``behind_proxy``: the
    router listens on loopback only, so whoever sends it a request is a web server on this
    machine that forwards to it: its X-Forwarded-Proto (https, when it ended TLS) is kept."""
    by_slot = {r.slot: r for r in routes}
    # behind a local web server, answers say they passed the router (Via, as proxies do):
    # `dockyard server check` follows a request through that server by it
    proto = ("    http-request set-header X-Forwarded-Proto http "
             "unless { req.hdr(x-forwarded-proto) -m found }\n"
             f'    http-response add-header Via "1.1 {VIA}"\n' if behind_proxy else
             "    http-request set-header X-Forwarded-Proto http\n")
    hsts_line = ('    http-response set-header Strict-Transport-Security "max-age=31536000"\n'
                 if hsts else "")
    out = [f"""\
# Generated by Dockyard from /var/lib/dockyard/apps/*/route.json; do not edit: it is
# rewritten on every deploy. Deploys change the running router through the Runtime API.

# The request log lives in memory (dockyard router logs reads it through the Runtime API):
# the most recent requests, and, kept longer, the ones that ended in an error. Writing each
# request to Docker's log driver instead costs about a third of the router's throughput.
ring {REQUESTS_RING}
    description "the most recent requests"
    format timed
    maxlen 2048
    size {REQUESTS_RING_BYTES}

ring {ERRORS_RING}
    description "requests that ended in an error (5xx, aborts, timeouts) and server events"
    format timed
    maxlen 2048
    size {ERRORS_RING_BYTES}

global
    log ring@{REQUESTS_RING} local0 info
    log ring@{ERRORS_RING} local0 err
    stats socket {API_SOCKET} mode 660 gid {socket_gid} level admin expose-fd listeners
    stats socket ipv4@{API_LOOPBACK} level admin
    stats timeout 30s
    hard-stop-after 30s
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-bind-ciphers {CIPHERS}
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets

# Docker's embedded DNS: app containers are found by container name.
resolvers docker
    nameserver dns 127.0.0.11:53
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 10s
    hold other 10s
    hold refused 10s
    hold nx 10s
    hold timeout 10s
    hold obsolete 10s
    accepted_payload_size 8192

defaults
    mode http
    # an upgrade's soft stop closes an idle keep-alive connection on its next answer (with
    # Connection: close), never under a request that is on its way
    option idle-close-on-response
    log global
    option httplog
    option log-separate-errors
    option dontlognull
    option forwardfor
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 30s
    timeout http-keep-alive 30s
    timeout tunnel {round(tunnel_timeout_s)}s
    timeout check 2s

frontend http
    bind :{HTTP_PORT}
    # the app is looked up once per request (host name -> backend)
    http-request set-var(txn.app) req.hdr(host),lower,word(1,:),map({HOSTS_MAP})
{proto}    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    acl known_host var(txn.app) -m found
    acl acme_challenge path_beg {ACME_PATH}
    acl has_cert req.hdr(host),lower,word(1,:),map({TLS_MAP}) -m found
    # names with an installed certificate: HTTPS only
    http-request redirect scheme https code 301 if has_cert !acme_challenge
    # ACME HTTP-01 challenges (only for names Dockyard routes) go to the ACME client
    # a challenge another node's router passed on (see backend acme): this node's client only
    use_backend acme_here if acme_challenge known_host {{ req.hdr({PEER_HEADER}) -m found }}
    use_backend acme if acme_challenge known_host
    use_backend %[var(txn.app)] if known_host
    default_backend no_app

frontend https
    bind :{HTTPS_PORT} ssl crt {DEFAULT_CERT} crt-list {CRT_LIST} alpn h2,http/1.1
    http-request set-var(txn.app) req.hdr(host),lower,word(1,:),map({HOSTS_MAP})
    http-request set-header X-Forwarded-Proto https
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
{hsts_line}    use_backend %[var(txn.app)] if {{ var(txn.app) -m found }}
    default_backend no_app

backend acme
    # in a cluster every node's client orders its own certificates, and the CA may ask any
    # node: a challenge this node's client does not know (404) is tried on the other nodes'
    # routers (peer slots, set at run time), which answer from their own client
    balance roundrobin
    retry-on conn-failure 404 502 503 504
    option redispatch 1
    retries {PEERS}
    http-request set-header {PEER_HEADER} 1
    server lego {ACME_LOOPBACK}
{_peer_lines()}
backend acme_here
    retries 0
    server lego {ACME_LOOPBACK}

backend no_app
    http-request return status 404 content-type text/plain string "No app is served under this name.\\n"
"""]
    for slot in range(1, SLOTS + 1):
        route = by_slot.get(slot)
        out.append(_backend(slot, route))
    return "\n".join(out)


def _backend(slot: int, route: Route | None) -> str:
    name = backend_name(slot)
    owner = f"app {route.app}" if route else "free"
    inter = f"{route.health_interval_ms}ms" if route else "1s"
    timeout = f"{route.health_timeout_ms}ms" if route else "2s"
    lines = [
        f"backend {name}    # {owner}",
        "    balance roundrobin",
        "    option httpchk",
        f"    timeout check {timeout}",
        f"    http-check send meth GET uri-lf %[srv_name,map({HEALTH_URI_MAP},/up)] ver HTTP/1.1 "
        f"hdr Host %[srv_name,map({HEALTH_HOST_MAP},localhost)] hdr Connection close",
        "    http-check expect status 200-399",
        "    http-check expect rstring .*",
        f"    http-request return status 503 content-type \"text/html; charset=utf-8\" file "
        f"{MAINTENANCE_PAGE} hdr Retry-After 30 if {{ be_name,map({MAINTENANCE_MAP}) -m found }}",
        f"    default-server check inter {inter} fastinter 250ms downinter 1s rise 2 fall 3 "
        "resolvers docker resolve-prefer ipv4 init-addr last,libc,none",
    ]
    cluster = f"{{ be_name,map({CLUSTER_MAP}) -m found }}"
    lines += [
        "    # a failed connection is tried again on another server; in a cluster (the",
        "    # backend is in cluster.map) so is a GET/HEAD a task left unanswered (its node",
        "    # vanished) for the map's time",
        "    timeout connect 2s",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response response-timeout",
        f"    http-request disable-l7-retry unless {{ method GET HEAD }} {cluster}",
        f"    http-request set-timeout server be_name,map_str_int({CLUSTER_MAP}) "
        f"if {{ method GET HEAD }} {cluster}",
    ]
    serving = route.servers if route else {}
    port = route.port if route else 80
    for server in server_names(slot):
        container = serving.get(server)
        if container:
            lines.append(f"    server {server} {container}:{port}")
        else:
            lines.append(f"    server {server} {UNUSED_ADDR}:{UNUSED_PORT} disabled")
    return "\n".join(lines) + "\n"


def render_maps(routes: list[Route]) -> dict[str, str]:
    """hosts.map, health_uri.map, health_host.map: file name -> content."""
    hosts = []
    uris = []
    health_hosts = []
    for route in sorted(routes, key=lambda r: r.slot):
        for domain in route.domains:
            hosts.append(f"{domain} {route.backend}")
        for server in server_names(route.slot):
            uris.append(f"{server} {route.health_path}")
            health_hosts.append(f"{server} {route.health_host}")
    clusters = [f"{r.backend} {r.response_timeout_ms}\n" for r in sorted(routes, key=lambda r: r.slot)
                if r.cluster]
    return {
        "cluster.map": "".join(clusters),
        "maintenance.map": "",
        "hosts.map": "".join(f"{line}\n" for line in hosts),
        "health_uri.map": "".join(f"{line}\n" for line in uris),
        "health_host.map": "".join(f"{line}\n" for line in health_hosts),
    }


MAINTENANCE_HTML = """\
<!doctype html>
<html><head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body style="font-family: sans-serif; margin: 4em auto; max-width: 32em">
<h1>Down for maintenance</h1>
<p>This site is being restored from a backup and will be back in a few moments.</p>
</body></html>
"""
