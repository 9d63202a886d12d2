"""A fake server for unit tests: the real flows run against it, in no time.

``FakeHost`` is a Host (host/base.py) whose commands are answered by ``FakeServer``, an
in-memory model of what a Dockyard server holds:

- files (state, scripts, router configuration, backups), with the audit log;
- a Docker engine: containers (with labels, networks and addresses), networks, images,
  volumes; each container behaves as its ``Behavior`` says (healthy after N seconds, never
  healthy, exits after N seconds, a release command's exit code and output);
- the router: HAProxy's maps, backends and servers as its Runtime API shows and changes them,
  with health checks that pass once a healthy container sits at a server's address; a
  router started (or restarted) loads its files, as the real one does;
- the certificate container (issue, renew, sync), the retirement of old releases (at once, or
  when the test says), the locks;
- a clock that advances when a flow waits (a 3 s settle costs nothing);
- scripted faults: a command that fails, the connection cut before or after the Nth round
  trip (then the next Runner finds the server as the cut left it).

It answers the real argv the builders make (docker with ``--flag=value`` options and ``--``,
Dockyard's scripts by name), so the flows are tested with the commands they really send.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import posixpath
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dockyard import scripts
from dockyard.docker import containers as ctr
from dockyard.errors import HostError
from dockyard.host.base import Clock, Completed, Entry, Held, Host
from dockyard.host.spec import HostSpec
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.state import paths, snapshot

ROOT = paths.ROOT


class FakeClock(Clock):
    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class Behavior:
    """How a container of some process behaves."""

    healthy: bool = True  # answers its health check
    boot: float = 0.5  # seconds until it answers
    exits_after: float | None = None  # exits (code 1) this long after starting
    restarts: bool = False  # ... and its restart policy starts it again (seen running)
    exit_code: int = 0  # for one-off containers (the release command)
    output: str = ""
    logs: str = "started\n"


@dataclass
class Container:
    name: str
    image: str
    labels: dict[str, str]
    networks: dict[str, str]  # network -> address
    command: list[str]
    started: float
    behavior: Behavior
    state: str = "running"
    env_file: str = ""
    aliases: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    shares: str = ""  # --network=container:X

    def status(self, now: float) -> str:
        if self.state == "running" and self.behavior.exits_after is not None and \
                now - self.started >= self.behavior.exits_after and not self.behavior.restarts:
            self.state = "exited"
        return self.state

    def restart_count(self, now: float) -> int:
        after = self.behavior.exits_after
        if self.state != "running" or not self.behavior.restarts or after is None:
            return 0
        return int((now - self.started) / after)


@dataclass
class Server:
    """An HAProxy server slot."""

    addr: str = rc.UNUSED_ADDR
    port: int = rc.UNUSED_PORT
    admin: str = "maint"  # ready | drain | maint
    health_down: bool = True
    fqdn: str = "-"
    check: str = ""
    sessions: int = 0


class Cut(Exception):
    pass


class FakeServer:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = set()
        self.containers: dict[str, Container] = {}
        self.networks: dict[str, dict[str, str]] = {"bridge": {}, "host": {}, "none": {}}
        self.images: dict[str, str] = {}
        self.volumes: dict[str, dict[str, str]] = {}
        self.locks: dict[str, str] = {}
        self.behaviors: dict[str, Behavior] = {}
        self.pullable: Callable[[str], bool] = lambda ref: not ref.startswith("missing")
        self.acme_ok = True
        self.build_ok = True
        #: what `docker version` says the engine runs
        self.platform = "linux/amd64"
        #: the registry's accounts (user: password) and the logins pull.sh was asked for
        self.registry_users: dict[str, str] = {}
        self.logins: list[tuple[str, str, str]] = []
        #: retirements run when started (False: they wait for finish_retirements())
        self.retire_at_once = True
        #: when not at once: a retirement ends this many (fake) seconds after it started
        #: (None: never, like one stuck draining a request that never ends)
        self.retire_after: float | None = None
        self.failing: list[Callable[[list[str]], int | None]] = []
        #: Times Docker moved the router's published ports to another of its networks (it
        #: takes them from the network whose name sorts first): each move refuses
        #: connections for a moment and cuts those its port proxy carried.
        self.port_moves: list[tuple[str, str]] = []
        #: Run once each, just before a routes compare-and-swap write (another app writing).
        self.before_routes_write: list[Callable[[], None]] = []
        # the router's live state (when dockyard-router runs)
        self.maps: dict[str, dict[str, str]] = {}
        self.backends: dict[str, dict[str, Server]] = {}
        self.certs_loaded: dict[str, str] = {}  # path -> serial
        self.crt_list: list[str] = []
        #: how long an ACME order takes (on the fake clock)
        self.order_seconds = 0.0
        self.router_pid = 0
        # connection faults
        self.round_trips = 0
        self.cut_at: int | None = None
        self.cut_after = False
        self.commands: list[list[str]] = []
        self._ips = itertools.count(2)
        self._ids = itertools.count(1)
        self.images.update({"dockyard-testbed/tools": self._id(), "haproxy:2.8": self._id(),
                            "docker:27-cli": self._id(), "goacme/lego:v4.19": self._id()})

    # -- helpers ---------------------------------------------------------------------------
    def _id(self) -> str:
        return "sha256:" + hashlib.sha256(str(next(self._ids)).encode()).hexdigest()

    def behavior_of(self, labels: dict[str, str]) -> Behavior:
        process = labels.get("dockyard.process") or labels.get("dockyard.accessory") or ""
        release = labels.get("dockyard.release", "")
        return (self.behaviors.get(f"{process}@v{release}") or self.behaviors.get(process)
                or Behavior())

    def read(self, path: str) -> str:
        return self.files.get(path, b"").decode()

    def audit(self) -> list[dict[str, object]]:
        """The commands' lines (a command's closing line, with its duration, has none)."""
        lines = [json.loads(line) for line in self.read(paths.AUDIT_LOG).split("\n") if line]
        return [line for line in lines if "command" in line]

    def audit_ends(self) -> list[dict[str, object]]:
        """The lines that close a command (Runner.finish): its duration."""
        lines = [json.loads(line) for line in self.read(paths.AUDIT_LOG).split("\n") if line]
        return [line for line in lines if "command" not in line]

    def app_containers(self, app: str) -> list[Container]:
        return [c for c in self.containers.values() if c.labels.get("dockyard.app") == app]

    @property
    def router_running(self) -> bool:
        c = self.containers.get(router.NAME)
        return c is not None and c.state == "running"

    def served(self, host: str) -> list[str]:
        """The containers the router would send a request for ``host`` to."""
        backend = self.maps.get(rc.HOSTS_MAP, {}).get(host)
        if backend is None or not self.router_running:
            return []
        out = []
        for server in self.backends.get(backend, {}).values():
            if self._status(server).startswith("UP"):
                out += [c.name for c in self.containers.values()
                        if server.addr in c.networks.values() and c.state == "running"]
        return out

    def redirects(self, host: str) -> bool:
        return host in self.maps.get(rc.TLS_MAP, {})

    # -- one command ---------------------------------------------------------------------
    def run(self, argv: Sequence[str], stdin: bytes | None = None) -> Completed:
        argv = list(argv)
        self.commands.append(argv)
        for fail in self.failing:
            code = fail(argv)
            if code is not None:
                return Completed(code, b"", b"scripted failure\n", 0.0)
        if argv[:2] == ["sudo", "-n"]:
            argv = argv[2:]
        try:
            code, out, err = self._dispatch(argv, stdin)
        except KeyError as exc:
            code, out, err = 1, "", f"no such thing: {exc}\n"
        return Completed(code, out.encode(), err.encode(), 0.01)

    def _dispatch(self, argv: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        head = argv[0]
        if head == "sh" and argv[1] == "-c":
            return self._script(argv[3].removeprefix("dockyard-"), argv[4:], stdin)
        if head == "sh":
            path = argv[1]
            if path not in self.files:
                return 127, "", f"sh: {path}: not found\n"
            return self._script(posixpath.basename(path).removesuffix(".sh"), argv[2:], stdin)
        if head == "docker":
            return self._docker(argv[1:], stdin)
        if head == "cat":
            path = argv[-1]
            return (0, self.read(path), "") if path in self.files else (1, "", "no file\n")
        if head == "test":
            flag, path = argv[1], argv[2]
            if flag == "-d":
                return (0 if path in self.dirs else 1), "", ""
            if flag == "-w":
                return (0 if path in self.dirs else 1), "", ""
            return (0 if path in self.files else 1), "", ""
        if head == "install":
            for d in argv[argv.index("-m") + 2:] if "-m" in argv else argv[2:]:
                if d.startswith("/"):
                    self._mkdir(d)
            return 0, "", ""
        if head == "rm":
            target = argv[-1]
            for path in [p for p in self.files if p == target or p.startswith(target + "/")]:
                del self.files[path]
            self.dirs = {d for d in self.dirs if not (d == target or d.startswith(target + "/"))}
            return 0, "", ""
        if head == "touch":
            self.files.setdefault(argv[1], b"")
            return 0, "", ""
        if head == "id":
            return 0, "uid=0(root) gid=0(root) groups=0(root)\n", ""
        if head == "df":
            return 0, "Filesystem 1K-blocks Used Available Use% Mounted\n/dev/x 1 1 9999999 1% /\n", ""
        if head == "kill":
            return 0, "", ""
        return 127, "", f"{head}: not emulated\n"

    def _mkdir(self, path: str) -> None:
        while path and path != "/":
            self.dirs.add(path)
            path = posixpath.dirname(path)

    # -- scripts ---------------------------------------------------------------------------
    def _script(self, name: str, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        handler = getattr(self, "sh_" + name.replace("-", "_"), None)
        if handler is None:
            return 127, "", f"script {name}: not emulated\n"
        result: tuple[int, str, str] = handler(args, stdin)
        return result

    def routes_text(self) -> str:
        found = sorted(p for p in self.files
                       if p.startswith(f"{paths.APPS}/") and p.endswith("/route.json")
                       and p.count("/") == paths.APPS.count("/") + 2)
        return "".join(self.read(p) for p in found)

    def sh_read_routes(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        return 0, self.routes_text(), ""

    def sh_read_app(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        d = args[0]
        releases = sorted((p for p in self.files if p.startswith(f"{d}/releases/")
                           and p.endswith(".json")),
                          key=lambda p: p)
        out = "".join(self.read(p) for p in releases)
        out += "--current\n" + self.read(f"{d}/current") + "\n--route\n"
        out += self.read(f"{d}/route.json")
        return 0, out, ""

    def sh_read_env(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        base = args[0]
        if f"{base}.env" not in self.files:
            return 1, "", "no such file\n"
        return 0, self.read(f"{base}.env") + "\0" + self.read(f"{base}.server"), ""

    def sh_read_audit(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        lines = self.read(paths.AUDIT_LOG).split("\n")[:-1]
        return 0, "".join(f"{line}\n" for line in lines[-int(args[0]):]), ""

    def sh_lock_status(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        holder = self.locks.get(args[0])
        return 0, f"held\n{holder}\n" if holder else "free\n", ""

    def sh_which(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        return (0 if args[0] in ("docker", "apt-get") else 1), "", ""

    def sh_cert_status(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        prefix = args[0] + "/"
        out = ""
        for path in sorted(self.files):
            if path.startswith(prefix) and path.endswith("/result"):
                out += path[len(prefix):-len("/result")] + " " + self.read(path)
        return 0, out, ""

    def sh_write_files(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        directory, size = args[0], int(args[1])
        data = stdin or b""
        if len(data) != size:
            return 1, "", "incomplete write\n"
        if len(args) > 2:
            while self.before_routes_write:
                self.before_routes_write.pop(0)()
            have = hashlib.sha256(self.routes_text().encode()).hexdigest()
            if have != args[2]:
                return 75, self.routes_text(), ""
        remove: list[str] = []
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                body = tar.extractfile(member)
                content = body.read() if body else b""
                if member.name == ".remove":
                    remove += [line for line in content.decode().split("\n") if line]
                    continue
                path = f"{directory}/{member.name}"
                self._mkdir(posixpath.dirname(path))
                self.files[path] = content
        for name in remove:
            self.files.pop(f"{directory}/{name}", None)
        if len(args) > 2:
            return 0, hashlib.sha256(self.routes_text().encode()).hexdigest() + "\n", ""
        return 0, "", ""

    def sh_spawn(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        self.run(args[1:])
        return 0, "", ""

    def sh_build(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        if not self.build_ok:
            return 1, "", "Step 2/3 : RUN make\nmake: *** [all] Error 2\n"
        tag = args[0]
        self.images[tag] = self._id()
        return 0, f"Successfully tagged {tag}\nimage {self.images[tag]}\n", ""

    def sh_pull(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        """scripts/pull.sh: --login checks the password on stdin against ``registry_users``."""
        image, tag = args[0], args[1]
        if "--login" in args:
            i = args.index("--login")
            registry, user = args[i + 1], args[i + 2]
            self.logins.append((registry, user, (stdin or b"").decode()))
            if self.registry_users.get(user) != (stdin or b"").decode():
                return 41, "", (f"Error response from daemon: login attempt to https://"
                                f"{registry}/v2/ failed with status: 401 Unauthorized\n")
        if not self.pullable(image):
            return 1, "", f"Error response from daemon: pull access denied for {image}\n"
        self.images.setdefault(image, self._id())
        self.images[tag] = self.images[image]
        digest = "sha256:" + hashlib.sha256(image.encode()).hexdigest()
        out = f"image {self.images[tag]}\ndigest {image.rsplit(':', 1)[0]}@{digest}\n"
        if "--untag" in args:
            del self.images[image]
        return 0, out, ""

    def sh_prune(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        app, upto, keep = args[0], int(args[1]), set(args[2:])
        used = {c.image for c in self.containers.values()}
        for ref in [r for r in self.images if r.startswith(f"dockyard/{app}:v")]:
            number = ref.rsplit(":v", 1)[1]
            if number not in keep and int(number) <= upto and ref not in used:
                del self.images[ref]
        return 0, "", ""

    def sh_ready(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        c = self.containers.get(args[0])
        if c is None:
            return 3, "", f"{args[0]} does not exist\n"
        if c.status(self.clock.now()) == "running" and c.behavior.healthy:
            return 0, "", ""
        return 1, "", f"{args[0]} is {c.state}/unhealthy after {args[2]}s\n"

    def sh_backup(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        app, name, kind, _ctr, why = args[:5]
        ext = {"postgres": "pgdump", "redis": "rdb"}.get(kind, "tar")
        stamp = f"20261201T{next(self._ips) % 240000:06d}Z"
        file = f"{stamp}-{why}.{ext}"
        d = f"{paths.BACKUPS}/{app}/{name}"
        self.files[f"{d}/{file}"] = b"PGDMP-fake"
        digest = hashlib.sha256(b"PGDMP-fake").hexdigest()
        self.files[f"{d}/{file}.sha256"] = f"{digest}  {file}\n".encode()
        return 0, f"{file} 10 {digest}\n", ""

    def sh_list_backups(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        out = ""
        for path in sorted(self.files):
            if posixpath.dirname(path) == args[0] and not path.endswith(".sha256"):
                digest = self.read(path + ".sha256").split(" ")[0] or "-"
                out += f"{posixpath.basename(path)} {len(self.files[path])} {digest}\n"
        return 0, out, ""

    def sh_kept(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        app, names = args[0], args[1:]
        backups = [p for p in self.files if p.startswith(f"{paths.BACKUPS}/{app}/")
                   and not p.endswith(".sha256")]
        out = f"backups {len(backups)}\n"
        for name in names:
            if (f"{router.ETC_DIR}/certs/{name}.pem" in self.files
                    or f"{paths.ROOT}/certs/lego/certificates/{name}.pem" in self.files):
                out += f"cert {name}\n"
        return 0, out, ""

    def sh_restore(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        return (0, "", "") if f"{args[4]}/{args[5]}" in self.files else (3, "", "no backup\n")

    # -- docker ----------------------------------------------------------------------------
    def _docker(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        words = args[:]
        if words[0] in ("network", "volume", "image") and len(words) > 1:
            verb = f"{words[0]} {words[1]}"
            rest = words[2:]
        else:
            verb, rest = words[0], words[1:]
        opts, pos = _split(rest)
        handler = getattr(self, "docker_" + verb.replace(" ", "_"), None)
        if handler is None:
            return 1, "", f"docker {verb}: not emulated\n"
        result: tuple[int, str, str] = handler(opts, pos, stdin)
        return result

    def docker_version(self, opts: dict[str, list[str]], pos: list[str],
                       stdin: bytes | None) -> tuple[int, str, str]:
        if "Server.Os" in " ".join(opts.get("--format", [])):
            return 0, f"{self.platform}\n", ""
        return 0, "20.10.24\n", ""

    def docker_run(self, opts: dict[str, list[str]], pos: list[str],
                   stdin: bytes | None) -> tuple[int, str, str]:
        image, command = pos[0], pos[1:]
        if image not in self.images:
            if not self.pullable(image):
                return 125, "", f"Unable to find image '{image}' locally\n"
            self.images[image] = self._id()
        labels = dict(label.split("=", 1) for label in opts.get("--label", []))
        if "--rm" in opts and "-d" not in opts:  # one-off, attached: its output and exit
            behavior = self.behavior_of(labels)
            return behavior.exit_code, behavior.output, ""
        name = (opts.get("--name") or [f"c{next(self._ids)}"])[0]
        if name in self.containers:
            return 125, "", f"Conflict. The container name \"/{name}\" is already in use\n"
        network = (opts.get("--network") or ["bridge"])[0]
        nets: dict[str, str] = {}
        shares = ""
        if network.startswith("container:"):
            shares = network.removeprefix("container:")
        elif network != "none":
            if network not in self.networks:
                return 125, "", f"network {network} not found\n"
            nets[network] = f"10.0.{len(self.networks)}.{next(self._ips)}"
        c = Container(name, image, labels, nets, command, self.clock.now(),
                      self.behavior_of(labels), env_file=(opts.get("--env-file") or [""])[0],
                      aliases=opts.get("--network-alias", []), shares=shares,
                      volumes=opts.get("--volume", []))
        self.containers[name] = c
        if name == router.NAME:
            self._router_start()
        if labels.get("dockyard.role") == "retire":
            c.command = pos[1:]
            if self.retire_at_once:
                self.retire(c)
        return 0, self._id()[7:] + "\n", ""

    def docker_rm(self, opts: dict[str, list[str]], pos: list[str],
                  stdin: bytes | None) -> tuple[int, str, str]:
        for name in pos:
            self.containers.pop(name, None)
        return 0, "", ""

    def docker_start(self, opts: dict[str, list[str]], pos: list[str],
                     stdin: bytes | None) -> tuple[int, str, str]:
        c = self.containers[pos[0]]
        c.state, c.started = "running", self.clock.now()
        if c.name == router.NAME:
            self._router_start()
        return 0, "", ""

    docker_restart = docker_start

    def docker_stop(self, opts: dict[str, list[str]], pos: list[str],
                    stdin: bytes | None) -> tuple[int, str, str]:
        for name in pos:
            self.containers[name].state = "exited"
        return 0, "", ""

    def docker_tag(self, opts: dict[str, list[str]], pos: list[str],
                   stdin: bytes | None) -> tuple[int, str, str]:
        if pos[0] not in self.images:
            return 1, "", f"No such image: {pos[0]}\n"
        self.images[pos[1]] = self.images[pos[0]]
        return 0, "", ""

    def docker_pull(self, opts: dict[str, list[str]], pos: list[str],
                    stdin: bytes | None) -> tuple[int, str, str]:
        if not self.pullable(pos[0]):
            return 1, "", f"Error response from daemon: pull access denied for {pos[0]}\n"
        self.images[pos[0]] = self._id()
        return 0, "", ""

    #: does a new HAProxy load (a router upgrade's successor)?
    haproxy_loads = True

    def sh_loaded(self, args: list[str], stdin: bytes | None) -> tuple[int, str, str]:
        """_wait_loaded's probe: the successor's state and how often it said it loaded."""
        c = self.containers.get(args[0])
        if c is None:
            return 0, "", ""
        if not self.haproxy_loads:
            c.state = "exited"
            return 0, "exited\n0\n", ""
        return 0, f"{c.state}\n1\n", ""

    def docker_update(self, opts: dict[str, list[str]], pos: list[str],
                      stdin: bytes | None) -> tuple[int, str, str]:
        c = self.containers.get(pos[0])
        if c is None:
            return 1, "", f"No such container: {pos[0]}\n"
        c.labels["fake.restart"] = opts.get("--restart", [""])[0]
        return 0, "", ""

    def docker_kill(self, opts: dict[str, list[str]], pos: list[str],
                    stdin: bytes | None) -> tuple[int, str, str]:
        """SIGUSR1 to HAProxy: a soft stop, done at once here."""
        c = self.containers.get(pos[0])
        if c is None:
            return 1, "", f"No such container: {pos[0]}\n"
        c.state = "exited"
        return 0, "", ""

    def docker_rename(self, opts: dict[str, list[str]], pos: list[str],
                      stdin: bytes | None) -> tuple[int, str, str]:
        old, new = pos
        if old not in self.containers or new in self.containers:
            return 1, "", "Error response from daemon: cannot rename\n"
        c = self.containers.pop(old)
        c.name = new
        self.containers[new] = c
        return 0, "", ""

    def docker_logs(self, opts: dict[str, list[str]], pos: list[str],
                    stdin: bytes | None) -> tuple[int, str, str]:
        c = self.containers.get(pos[0])
        return (0, c.behavior.logs, "") if c else (1, "", "No such container\n")

    def docker_exec(self, opts: dict[str, list[str]], pos: list[str],
                    stdin: bytes | None) -> tuple[int, str, str]:
        name, command = pos[0], pos[1:]
        if name not in self.containers:
            return 1, "", f"No such container: {name}\n"
        if name == "dockyard-certs" and command[:2] == ["sh", "/var/lib/dockyard/certs/bin/certs.sh"]:
            return self._certs(command[2:])
        return 0, "", ""

    def docker_inspect(self, opts: dict[str, list[str]], pos: list[str],
                       stdin: bytes | None) -> tuple[int, str, str]:
        fmt = (opts.get("--format") or opts.get("-f") or [""])[0]
        if fmt == snapshot.HELPERS_FORMAT:
            out, err = "", ""
            for name in pos:
                found = self.containers.get(name)
                if found is None:
                    err += f"Error: No such container: {name}\n"
                    continue
                state = found.status(self.clock.now())
                out += (f"/{name}\t{str(state == 'running').lower()}\t{state}\t"
                        f"2026-12-01T00:00:00Z\t{found.labels.get('dockyard.config', '')}\t"
                        f"{' '.join(found.networks)} \n")
            return (1 if err else 0), out, err
        c = self.containers.get(pos[0])
        if c is None:
            return 1, "", f"Error: No such object: {pos[0]}\n"
        state = c.status(self.clock.now())
        if fmt == "{{.State.Status}}":
            return 0, f"{state}\n", ""
        if fmt == ctr.STATE_FORMAT:
            restarts = c.restart_count(self.clock.now())
            return 0, (f"{state} {str(state == 'running').lower()} {restarts} "
                       "2026-12-01T00:00:00Z\n"), ""
        if "NetworkSettings.Networks" in fmt and "IPAddress" in fmt:
            network = fmt.split('"')[1]
            return 0, c.networks.get(network, "") + "\n", ""
        return 1, "", f"format not emulated: {fmt}\n"

    def docker_ps(self, opts: dict[str, list[str]], pos: list[str],
                  stdin: bytes | None) -> tuple[int, str, str]:
        if self.retire_after is not None:
            for job in [c for c in self.containers.values()
                        if c.labels.get("dockyard.role") == "retire"
                        and self.clock.now() - c.started >= self.retire_after]:
                self.retire(job)
        fmt = (opts.get("--format") or [""])[0]
        out = ""
        for c in self.containers.values():
            state = c.status(self.clock.now())
            if "-a" not in opts and state != "running":
                continue
            if not _matches(c, opts.get("--filter", [])):
                continue
            out += (fmt.replace('{{.Names}}', c.name).replace('{{.State}}', state)
                    .replace('{{.Status}}', "Up 2 seconds" if state == "running" else
                             "Exited (1)").replace('{{.Image}}', c.image)
                    .replace('{{.Ports}}', ""))
            for key, value in [*c.labels.items(), ("dockyard.process", ""),
                               ("dockyard.release", ""), ("dockyard.accessory", ""),
                               ("dockyard.accessory.type", ""), ("dockyard.config", ""),
                               ("dockyard.slots", ""), ("dockyard.role", "")]:
                out = out.replace('{{.Label "' + key + '"}}', value)
            out += "\n"
        return 0, out, ""

    def docker_network_create(self, opts: dict[str, list[str]], pos: list[str],
                              stdin: bytes | None) -> tuple[int, str, str]:
        if pos[0] in self.networks:
            return 1, "", f"network with name {pos[0]} already exists\n"
        self.networks[pos[0]] = dict(label.split("=", 1) for label in opts.get("--label", []))
        return 0, "", ""

    def docker_network_connect(self, opts: dict[str, list[str]], pos: list[str],
                               stdin: bytes | None) -> tuple[int, str, str]:
        network, name = pos
        if network not in self.networks:
            return 1, "", "no such network\n"
        before = self.ports_network(name)
        self.containers[name].networks[network] = f"10.1.{len(self.networks)}.{next(self._ips)}"
        self._ports_follow(name, before)
        return 0, "", ""

    def ports_network(self, name: str) -> str:
        """The network a container's published ports go through: Docker's gateway endpoint,
        the one whose network name sorts first (all of Dockyard's are alike otherwise)."""
        c = self.containers.get(name)
        return min(c.networks) if c and c.networks else ""

    def _ports_follow(self, name: str, before: str) -> None:
        after = self.ports_network(name)
        if name == router.NAME and before and after != before:
            self.port_moves.append((before, after))

    def docker_network_disconnect(self, opts: dict[str, list[str]], pos: list[str],
                                  stdin: bytes | None) -> tuple[int, str, str]:
        network, name = pos
        before = self.ports_network(name)
        self.containers[name].networks.pop(network, None)
        self._ports_follow(name, before)
        return 0, "", ""

    def docker_network_rm(self, opts: dict[str, list[str]], pos: list[str],
                          stdin: bytes | None) -> tuple[int, str, str]:
        for name in pos:
            if any(name in c.networks for c in self.containers.values()):
                return 1, "", f"network {name} has active endpoints\n"
            self.networks.pop(name, None)
        return 0, "", ""

    def docker_network_ls(self, opts: dict[str, list[str]], pos: list[str],
                          stdin: bytes | None) -> tuple[int, str, str]:
        return 0, "".join(f"{n}\n" for n in self.networks), ""

    def docker_network_inspect(self, opts: dict[str, list[str]], pos: list[str],
                               stdin: bytes | None) -> tuple[int, str, str]:
        if "Gateway" in " ".join(opts.get("--format", [])) and pos[0] == "bridge":
            return 0, "172.17.0.1 172.17.0.0/16 \n", ""  # the server's address on Docker's bridge
        return (0, pos[0] + "\n", "") if pos[0] in self.networks else (1, "", "no such\n")

    def docker_volume_create(self, opts: dict[str, list[str]], pos: list[str],
                             stdin: bytes | None) -> tuple[int, str, str]:
        self.volumes.setdefault(pos[0], dict(x.split("=", 1) for x in opts.get("--label", [])))
        return 0, pos[0] + "\n", ""

    def docker_volume_ls(self, opts: dict[str, list[str]], pos: list[str],
                         stdin: bytes | None) -> tuple[int, str, str]:
        wanted = [f.removeprefix("label=").split("=", 1) for f in opts.get("--filter", [])]
        return 0, "".join(f"{name}\n" for name, labels in self.volumes.items()
                          if all(labels.get(k) == v for k, v in wanted)), ""

    def docker_volume_rm(self, opts: dict[str, list[str]], pos: list[str],
                         stdin: bytes | None) -> tuple[int, str, str]:
        for name in pos:
            self.volumes.pop(name, None)
        return 0, "", ""

    def docker_image_inspect(self, opts: dict[str, list[str]], pos: list[str],
                             stdin: bytes | None) -> tuple[int, str, str]:
        out = "".join(self.images[ref] + "\n" for ref in pos if ref in self.images)
        err = "".join(f"Error: No such image: {ref}\n" for ref in pos if ref not in self.images)
        return (1 if err else 0), out, err

    def docker_image_ls(self, opts: dict[str, list[str]], pos: list[str],
                        stdin: bytes | None) -> tuple[int, str, str]:
        repo = pos[0] if pos else ""
        return 0, "".join(f"{ref}\n" for ref in self.images
                          if ref.rsplit(":", 1)[0] == repo), ""

    def docker_image_rm(self, opts: dict[str, list[str]], pos: list[str],
                        stdin: bytes | None) -> tuple[int, str, str]:
        for ref in pos:
            self.images.pop(ref, None)
        return 0, "", ""

    # -- retirements -------------------------------------------------------------------------
    def retire(self, c: Container) -> None:
        """What scripts/retire.sh does: park the slots, stop and remove the containers,
        write the audit lines; the container (--rm) goes."""
        args = c.command[1:]  # after the script path
        prefix, _drain, _stop, backend = args[:4]
        rest = args[4:]
        dash = rest.index("--")
        servers, names = rest[:dash], rest[dash + 1:]
        for entry in servers:
            slot = self.backends.get(backend, {}).get(entry.split("=")[0])
            if slot is not None:
                slot.admin, slot.addr, slot.port = "maint", rc.UNUSED_ADDR, rc.UNUSED_PORT
                if entry.endswith("=named"):
                    slot.fqdn = rc.PARKED_FQDN
        for name in names:
            self.containers.pop(name, None)
        for line in (f"drain {' '.join(servers)}", f"docker stop -- {' '.join(names)}"):
            self._append_audit(
                f'{{"time":"2026-12-01T00:00:00Z",{prefix},"command":"{line}","exit":0,'
                '"duration_ms":0}\n')
        self.containers.pop(c.name, None)

    def finish_retirements(self) -> None:
        for c in [c for c in self.containers.values()
                  if c.labels.get("dockyard.role") == "retire"]:
            self.retire(c)

    def _append_audit(self, line: str) -> None:
        if ROOT in self.dirs:
            self.files[paths.AUDIT_LOG] = self.files.get(paths.AUDIT_LOG, b"") + line.encode()

    # -- the router --------------------------------------------------------------------------
    def _router_start(self) -> None:
        """HAProxy starts from its files: servers from haproxy.cfg, maps from *.map."""
        self.router_pid += 1
        etc = router.ETC_DIR
        self.maps = {}
        for name in ("hosts", "health_uri", "health_host", "tls", "maintenance"):
            path = f"{rc.CONFIG_DIR}/{name}.map"
            entries = {}
            for line in self.read(f"{etc}/{name}.map").split("\n"):
                parts = line.split()
                if len(parts) == 2:
                    entries[parts[0]] = parts[1]
            self.maps[path] = entries
        self.backends = {rc.backend_name(s): {n: Server() for n in rc.server_names(s)}
                         for s in range(1, rc.SLOTS + 1)}
        backend = ""
        for line in self.read(f"{etc}/haproxy.cfg").split("\n"):
            words = line.split()
            if words[:1] == ["backend"]:
                backend = words[1]
            elif words[:1] == ["server"] and backend in self.backends and "disabled" not in words:
                host, port = words[2].rsplit(":", 1)
                addr = next((ip for c in self.containers.values() if c.name == host
                             for ip in c.networks.values()), rc.UNUSED_ADDR)
                self.backends[backend][words[1]] = Server(addr, int(port), "ready", False, host)
        self.certs_loaded = {}
        self.crt_list = [p for p in self.read(f"{etc}/certs/crt-list").split("\n") if p]
        for entry in self.crt_list:
            self.certs_loaded[entry] = "01"

    def _status(self, s: Server) -> str:
        if s.admin == "maint":
            return "MAINT"
        healthy = self._healthy(s)
        if healthy:
            s.health_down = False
            s.check = "L7OK"
        else:
            s.check = "L4CON"
        if s.admin == "drain":
            return "DRAIN"
        return "UP" if not s.health_down else "DOWN"

    def _healthy(self, s: Server) -> bool:
        for c in self.containers.values():
            if s.addr in c.networks.values() and c.status(self.clock.now()) == "running":
                return c.behavior.healthy and self.clock.now() - c.started >= c.behavior.boot
        return False

    def api(self, line: str) -> str:
        self.commands.append(["router-api", line])
        if not self.router_running:
            raise HostError("DY041", "lost the connection to the router's Runtime API")
        words = line.split()
        if words[:2] == ["show", "info"]:
            return f"Name: HAProxy\nPid: {self.router_pid}\n"
        if words[:2] == ["show", "stat"]:
            out = io.StringIO()
            writer = csv.writer(out)
            writer.writerow(["pxname", "svname", "qcur", "qmax", "scur", "status",
                             "check_status", "check_desc", "addr"])
            only = words[2] if len(words) > 2 and words[2] != "-1" else None
            for backend, servers in self.backends.items():
                if only is not None and backend != only:
                    continue
                for name, s in servers.items():
                    writer.writerow([backend, name, 0, 0, s.sessions, self._status(s), s.check,
                                     "", f"{s.addr}:{s.port}"])
            return "# " + out.getvalue()
        if words[:3] == ["show", "servers", "state"]:
            lines = ["1", "# be_id be_name srv_id srv_name srv_addr srv_op_state "
                     "srv_admin_state srv_fqdn"]
            for i, (name, s) in enumerate(self.backends.get(words[3], {}).items(), 1):
                lines.append(f"1 {words[3]} {i} {name} {s.addr} 2 "
                             f"{1 if s.admin == 'maint' else 0} {s.fqdn}")
            return "\n".join(lines) + "\n"
        if words[:2] == ["show", "map"]:
            return "".join(f"0x{i:x} {k} {v}\n"
                           for i, (k, v) in enumerate(self.maps.get(words[2], {}).items()))
        if words[0] in ("add", "set") and words[1] == "map":
            self.maps.setdefault(words[2], {})[words[3]] = words[4]
            return "\n"
        if words[:2] == ["del", "map"]:
            if words[3] not in self.maps.get(words[2], {}):
                return "Key not found.\n"
            del self.maps[words[2]][words[3]]
            return "\n"
        if words[:2] == ["set", "server"]:
            backend, name = words[2].split("/")
            s = self.backends[backend][name]
            if words[3] == "addr":
                s.addr, s.port = words[4], int(words[6])
            elif words[3] == "state":
                s.admin = words[4]
                if words[4] == "maint":
                    s.health_down = True
            elif words[3] == "health":
                s.health_down = words[4] == "down"
            elif words[3] == "fqdn":
                s.fqdn = words[4]
            return "\n"
        if words[:3] == ["show", "ssl", "cert"]:
            if words[3] in self.certs_loaded:
                return (f"Filename: {words[3]}\nSerial: {self.certs_loaded[words[3]]}\n"
                        "notBefore: Dec  1 00:00:00 2026 GMT\nnotAfter: Mar  1 00:00:00 2027 "
                        "GMT\nIssuer: /CN=Pebble Intermediate CA\n")
            return "unable to find the certificate\n"
        if words[:3] == ["show", "ssl", "crt-list"]:
            return f"# {rc.CRT_LIST}\n" + "".join(f"{p}\n" for p in self.crt_list)
        if words[:3] == ["add", "ssl", "crt-list"]:
            if words[4] not in self.crt_list:
                self.crt_list.append(words[4])
            return "Success!\n"
        if words[:3] == ["del", "ssl", "crt-list"]:
            if words[4] in self.crt_list:
                self.crt_list.remove(words[4])
            return "Entry deleted in crtlist!\n"
        return f"Unknown command: {line}\n"

    # -- the certificate container -----------------------------------------------------------
    def _wanted(self) -> list[str]:
        out: set[str] = set()
        for path, body in self.files.items():
            if path.startswith(f"{paths.APPS}/") and path.endswith("/tls-domains"):
                out |= {n for n in body.decode().split("\n") if n}
        return sorted(out)

    def _certs(self, args: list[str]) -> tuple[int, str, str]:
        etc = router.ETC_DIR
        verb = args[0]
        if verb in ("issue", "renew"):
            name = args[1]
            cert = rc.cert_path(name)
            kept = f"{paths.ROOT}/certs/lego/certificates/{name}.pem" in self.files
            if verb == "issue" and kept and cert not in self.certs_loaded:
                self.certs_loaded[cert] = "01"  # the kept one, no new order
            elif verb == "renew" or cert not in self.certs_loaded:
                if not self.acme_ok:
                    self.files[f"{paths.ROOT}/certs/status/{name}/result"] = \
                        b"2026-12-01T00:00:00Z failed attempt 1\n"
                    return 1, "", "acme: error: 400 :: urn:ietf:params:acme:error:connection\n"
                self.certs_loaded[cert] = f"{next(self._ids):02x}"
                self.clock.t += self.order_seconds  # the ACME order's own time
                self.files[f"{paths.ROOT}/certs/lego/certificates/{name}.pem"] = b"PEM"
                self.files[f"{paths.ROOT}/certs/status/{name}/result"] = \
                    b"2026-12-01T00:00:00Z ok issued\n"
            if cert not in self.crt_list:
                self.crt_list.append(cert)
            self.maps.setdefault(rc.TLS_MAP, {})[name] = "1"
            self.files[f"{etc}/tls.map"] = "".join(
                f"{n} 1\n" for n in self.maps[rc.TLS_MAP]).encode()
            return 0, "", ""
        if verb == "sync":
            want = set(self._wanted())
            tls = self.maps.setdefault(rc.TLS_MAP, {})
            for name in [n for n in tls if n not in want]:
                del tls[name]
            self.crt_list = [p for p in self.crt_list
                             if posixpath.basename(p).removesuffix(".pem") in want]
            for name in want:
                if rc.cert_path(name) in self.certs_loaded:
                    tls[name] = "1"
                    if rc.cert_path(name) not in self.crt_list:
                        self.crt_list.append(rc.cert_path(name))
            self.files[f"{etc}/tls.map"] = "".join(f"{n} 1\n" for n in tls).encode()
            self.files[f"{etc}/certs/crt-list"] = "".join(f"{p}\n" for p in self.crt_list).encode()
            return 0, "", ""
        if verb == "forget":
            self._certs(["sync"])
            want = set(self._wanted())
            for name in [n for n in args[1:] if n not in want]:
                self.certs_loaded.pop(rc.cert_path(name), None)
                for path in [p for p in self.files
                             if p in (f"{etc}/certs/{name}.pem",
                                      f"{paths.ROOT}/certs/lego/certificates/{name}.pem")
                             or p.startswith(f"{paths.ROOT}/certs/status/{name}/")]:
                    del self.files[path]
            return 0, "", ""
        return 2, "", "usage\n"


def _split(args: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """docker's argv: options (``--x=v``, ``-d``, ``-f v``) until ``--``, then positionals."""
    opts: dict[str, list[str]] = {}
    pos: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            pos += args[i + 1:]
            break
        if word.startswith("-") and len(word) > 1:
            key, sep, value = word.partition("=")
            if sep:
                opts.setdefault(key, []).append(value)
            elif key in ("-f", "-t", "--filter", "--format") and i + 1 < len(args) and \
                    not args[i + 1].startswith("-"):
                opts.setdefault(key, []).append(args[i + 1])
                i += 1
            else:
                opts.setdefault(key, []).append("")
        else:
            pos.append(word)
        i += 1
    return opts, pos


def _matches(c: Container, filters: list[str]) -> bool:
    for f in filters:
        kind, _, value = f.partition("=")
        if kind == "label":
            key, eq, want = value.partition("=")
            if key not in c.labels or (eq and c.labels[key] != want):
                return False
        elif kind == "name" and c.name != value.strip("^$"):
            return False
    return True


class FakeHost(Host):
    """A Host whose commands the FakeServer answers; round trips counted, cuts scripted."""

    def __init__(self, server: FakeServer | None = None) -> None:
        super().__init__(HostSpec(kind="ssh", hostname="fake", user="root", port=22))
        self.server = server or FakeServer()
        self.clock = self.server.clock

    def spawn_argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv)

    def _trip(self, then: Callable[[], object]) -> object:
        s = self.server
        s.round_trips += 1
        if s.cut_at is not None and s.round_trips == s.cut_at:
            if s.cut_after:
                then()
            s.locks.clear()  # the lock died with the connection
            raise HostError("DY010", "cannot reach fake over SSH: connection cut (test)")
        return then()

    def execute(self, argv: Sequence[str], *, stdin: bytes | None = None,
                stream: bool = False, timeout: float | None = None,
                stdin_path: str | None = None, stdout_path: str | None = None) -> Completed:
        argv = list(argv)
        if argv[:2] == ["sh", "-c"] and argv[3] == "dockyard-audit":  # the audit wrapper
            prefix, pending, inner = argv[4], argv[5], argv[6:]
            if stdin_path:
                with open(stdin_path, "rb") as fh:
                    stdin = fh.read()

            def run() -> Completed:
                result = self.server.run(inner, stdin)
                self.server._append_audit(pending + _audit_line(prefix, result.returncode))
                return result
            done = self._trip(run)
            assert isinstance(done, Completed)
            return done
        done = self._trip(lambda: self.server.run(argv, stdin))
        assert isinstance(done, Completed)
        return done

    def run_batch(self, entries: Sequence[Entry], *, pending: str = "",
                  stdin: bytes | None = None, stdin_path: str | None = None,
                  timeout: float | None = None) -> list[Completed]:
        if stdin_path:
            with open(stdin_path, "rb") as fh:
                stdin = fh.read()

        def run() -> list[Completed]:
            out: list[Completed] = []
            lines = pending
            for entry in entries:
                result = self.server.run(entry.argv, stdin if entry.stdin else None)
                out.append(result)
                if entry.audit:
                    self.server._append_audit(lines + _audit_line(entry.prefix,
                                                                   result.returncode))
                    lines = ""
                if entry.check and not result.ok:
                    break
            if lines:
                self.server._append_audit(lines)
            return out

        done = self._trip(run)
        assert isinstance(done, list)
        return done

    def acquire_lock(self, path: str, info: str, entries: Sequence[Entry] = ()) -> Held | None:
        s = self.server

        def take() -> Held | None:
            if path in s.locks:
                self.lock_holder = s.locks[path]  # as lock.sh prints it when busy
                return None
            s.locks[path] = f"4242 {info}"
            answers = [s.run(e.argv) for e in entries]
            def release(last: bytes) -> None:
                if last:
                    s._append_audit(last.decode())
                s.locks.pop(path, None)

            return Held(release, answers)

        held = self._trip(take)
        assert held is None or isinstance(held, Held)
        return held

    def api(self, remote_socket: str, line: str, *, timeout: float = 10.0) -> str:
        return self.server.api(line)

    def interactive(self, argv: Sequence[str], *, tty: bool) -> int:
        return self.execute(argv).returncode


def _audit_line(prefix: str, code: int) -> str:
    return f'{{"time":"2026-12-01T00:00:00Z",{prefix},"exit":{code},"duration_ms":1}}\n'


__all__ = ["Behavior", "FakeHost", "FakeServer", "scripts"]
