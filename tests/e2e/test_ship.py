"""Images made elsewhere (issue: build anywhere, ship only what changed).

- the local builder on a namespace host (testbed/hosts): this machine's Docker builds, and
  only the layers the host lacks cross its link, counted on every interface of its network
  namespace but lo; a later deploy under the reference load drops nothing; no port is left
  listening on either side;
- ``deploy --image`` from a password-protected registry (htpasswd) on 127.0.0.1: the password
  is in no process's argv (sampled while the deploy runs), output, audit log or file on the
  server afterwards; a wrong password is one line and the old release keeps serving;
- a missing local Docker and a platform mismatch: one line each, before anything changes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import nshosts
from tests.e2e.conftest import (
    HELLO,
    HTTP_PORT,
    STATE,
    TESTBED,
    bridge_gateway,
    get,
    hello_config,
    sh,
    wait_answer,
    zd_probe,
)
from tests.helpers import dockyard


def in_netns(name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return sh("nsenter", f"--net=/var/run/netns/{name}", "--", *argv, check=False)


class LinkCounter:
    """Bytes on a namespace's links while a block runs. Containers' veths come and go during
    a deploy (a retired container's takes its counters with it), so the counters are sampled
    every 20 ms and each interface adds what it carried while it was seen. One that appears
    counts from its first sample: Docker moves a stopping container's end of its veth back
    into this namespace, with the counters of its whole life in the container's."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.first: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _sample(self) -> None:
        for index, value in nshosts.link_bytes(self.netns).items():
            self.first.setdefault(index, value)
            self.last[index] = value

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def __enter__(self) -> LinkCounter:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def total(self) -> int:
        return sum(self.last[i] - self.first[i] for i in self.last)


def listening(netns: str | None) -> set[str]:
    argv = ["ss", "-ltnH"]
    out = (in_netns(netns, *argv) if netns else sh(*argv)).stdout
    return {line.split()[3] for line in out.splitlines() if line.strip()}


def page(address: str) -> str:
    """The app's index page through the host's router (port 80 on its address)."""
    request = urllib.request.Request(f"http://{address}/index.html",
                                     headers={"Host": "shipped.test"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return str(resp.read().decode().strip())


@pytest.fixture
def host1(testbed: None) -> Iterator[tuple[str, str, str]]:
    """(ssh URL, address, network namespace) of the first namespace host, its apps removed
    before and after. After ``testbed``: its first wipe of this machine's engine removes
    containers labelled dockyard.app, the local build's own among them."""
    url = nshosts.hosts().get("HOST1")
    if url is None:
        pytest.fail("no namespace hosts: run testbed/up (it starts them)")
    addr = nshosts.address(url)
    with nshosts.exclusive():
        nshosts.wipe(addr)
        yield url, addr, "dockyard-host1"
        nshosts.wipe(addr)
    # what the local builder made on this machine
    built = sh("docker", "images", "-q", "dockyard/shipped").stdout.split()
    if built:
        sh("docker", "rmi", "-f", *set(built), check=False)


def _app(directory: Path, url: str, line: str) -> Path:
    """examples/hello with 1.5 MB of incompressible data next to its pages (one layer, the
    COPY), and ``line`` in its index page: a one-line change re-ships that layer."""
    app = directory / "app"
    if not app.exists():
        shutil.copytree(HELLO, app)
        (app / "www" / "blob.bin").write_bytes(os.urandom(1536 * 1024))
    (app / "www" / "index.html").write_text(f"<p>{line}</p>\n")
    cfg = directory / "dockyard.toml"
    cfg.write_text(
        f'[app]\nname = "shipped"\n[server]\nhost = "{url}"\n'
        f'[build]\nbuilder = "local"\ncontext = "{app}"\n'
        'args = { BASE = "dockyard-testbed/tools", VERSION = "v1" }\n'
        '[web]\nport = 8080\ndomains = ["shipped.test"]\ntls = false\n'
        'healthcheck_interval = "500ms"\n'
        '[deploy]\ndrain_timeout = "10s"\nstop_timeout = "5s"\n'
        '[proxy]\nrouter_image = "dockyard-testbed/router"\n'
        'tools_image = "dockyard-testbed/tools"\n')
    return cfg


#: What a deploy moves over the host's links besides the image: the SSH session (commands,
#: their output, the router's Runtime API), health checks on its Docker bridge. Measured
#: here at 60-110 KB for a deploy that ships nothing new; the test allows 256 KB.
OVERHEAD = 256 * 1024


def test_local_builder_ships_only_the_new_layers(tmp_path: Path,
                                                 host1: tuple[str, str, str]) -> None:
    url, address, netns = host1
    before_here, before_there = listening(None), listening(netns)
    cfg = _app(tmp_path, url, "one")
    first = dockyard("-c", str(cfg), "deploy", timeout=600)
    assert first.returncode == 0, first.output
    assert "on this machine" in first.output and "ship" in first.output, first.output
    assert page(address) == "<p>one</p>"

    # a one-line change: only the layer holding it travels
    _app(tmp_path, url, "two")
    with LinkCounter(netns) as counter:
        second = dockyard("-c", str(cfg), "deploy", timeout=600)
    moved = counter.total
    assert second.returncode == 0, second.output
    old, new = nshosts.pushed_layers("shipped", "v1"), nshosts.pushed_layers("shipped", "v2")
    fresh = sum(size for digest, size in new.items() if digest not in old)
    print(f"\nshipped: {moved} bytes on the host's links for new layers of {fresh} bytes "
          f"({moved / fresh:.2f}x)")
    assert fresh > 1024 * 1024, (old, new)  # the blob's layer changed
    assert moved <= 1.2 * fresh + OVERHEAD, (moved, fresh)
    record = json.loads(nshosts.on_host(address, "cat",
                                 "/var/lib/dockyard/apps/shipped/releases/v2.json").stdout)
    assert record["image_digest"].startswith("sha256:") and record["image_source"] == \
        "local build", record

    # another one-line change under the reference load: nothing dropped
    _app(tmp_path, url, "three")
    probe = subprocess.run(
        [*zd_probe(), "--url", f"http://{address}/index.html", "--host", "shipped.test",
         "--", sys_dockyard(), "-c", str(cfg), "deploy"],
        capture_output=True, text=True, timeout=600)
    assert probe.returncode == 0, probe.stdout + probe.stderr
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    print(f"under load: {report['ok']} ok, {report['failed']} failed")
    assert report["ok"] > 100 and not report["failed"], report
    assert page(address) == "<p>three</p>"

    # nothing listens afterwards on either side; the registry is stopped, kept for its cache
    # (the docker0 address aside: other tests' webhook receivers listen there meanwhile, for
    # the server's containers; Dockyard never does)
    gateway = f"{bridge_gateway()}:"
    assert {a for a in listening(None) - before_here if not a.startswith(gateway)} == set()
    assert listening(netns) - before_there - {"0.0.0.0:80", "0.0.0.0:443", "[::]:80",
                                              "[::]:443"} == set()
    state = sh("docker", "inspect", "-f", "{{.State.Status}}", "dockyard-registry").stdout
    assert state.strip() == "exited"


def sys_dockyard() -> str:
    import sys

    return str(Path(sys.executable).parent / "dockyard")


# -- a password-protected registry -----------------------------------------------------------

REG_USER = "ci-bot"
#: made per run: a password written in this file would be found in it by the search below
#: (the checkout may live under /tmp)
REG_PASSWORD = "reg-pw-" + secrets.token_hex(8)


@pytest.fixture
def private_registry(tmp_path: Path) -> Iterator[str]:
    """registry:2 with htpasswd on 127.0.0.1 (a port Docker picks): its address."""
    auth = tmp_path / "auth"
    auth.mkdir()
    line = sh("htpasswd", "-Bbn", REG_USER, REG_PASSWORD).stdout.strip()
    (auth / "htpasswd").write_text(line + "\n")
    name = f"dockyard-test-registry-{os.getpid()}"
    sh("docker", "run", "-d", "--name", name, "-p", "127.0.0.1::5000",
       "-v", f"{auth}:/auth:ro", "-e", "REGISTRY_AUTH=htpasswd",
       "-e", "REGISTRY_AUTH_HTPASSWD_REALM=test", "-e",
       "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd", "registry:2")
    try:
        port = sh("docker", "port", name, "5000/tcp").stdout.split()[0].rsplit(":", 1)[1]
        address = f"127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=2)
            except urllib.error.HTTPError:
                break  # 401: it answers
            except OSError:
                time.sleep(0.1)
        yield address
    finally:
        sh("docker", "rm", "-f", "-v", name, check=False)


def push_private(address: str, tag: str, version: str, config_dir: Path) -> str:
    """Push hello VERSION as ADDRESS/team/hello:TAG, then drop that name here (this machine
    is also the server: the deploy must pull it)."""
    ref = f"{address}/team/hello:{tag}"
    env = {**os.environ, "DOCKER_CONFIG": str(config_dir)}
    subprocess.run(["docker", "login", "--username", REG_USER, "--password-stdin", address],
                   input=REG_PASSWORD, text=True, env=env, check=True, capture_output=True)
    sh("docker", "tag", f"dockyard-testbed/hello:{version}", ref)
    subprocess.run(["docker", "push", ref], env=env, check=True, capture_output=True)
    sh("docker", "image", "rm", ref)
    shutil.rmtree(config_dir)
    return ref


def test_deploy_image_from_a_private_registry(tmp_path: Path, clean: None,
                                              private_registry: str) -> None:
    good = push_private(private_registry, "1", "v2", tmp_path / "docker-a")
    bad = push_private(private_registry, "2", "v1", tmp_path / "docker-b")
    cfg = hello_config(tmp_path / "cfg", name="privreg", extra=(
        f'[registry]\nserver = "{private_registry}"\nusername = "{REG_USER}"\n'
        'password = { env = "REG_PASSWORD" }\n'))
    first = dockyard("-c", str(cfg), "deploy", timeout=300)
    assert first.returncode == 0, first.output
    assert wait_answer(HTTP_PORT, "privreg.test", "hello v1") >= 0

    # the plan shows the login's stdin, never the password
    dry = dockyard("-c", str(cfg), "explain", "deploy", "--image", good,
                   env={"REG_PASSWORD": REG_PASSWORD})
    assert dry.returncode == 0 and "pull.sh" in dry.output, dry.output
    assert "<registry password>" in dry.output and REG_PASSWORD not in dry.output

    # sample every process's argv while the deploy with credentials runs
    seen: list[str] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    with contextlib.suppress(OSError):
                        seen.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(
                            errors="replace"))
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run = dockyard("-c", str(cfg), "-v", "deploy", "--image", good,
                       env={"REG_PASSWORD": REG_PASSWORD}, timeout=300)
    finally:
        done.set()
        sampler.join()
    assert run.returncode == 0, run.output
    assert wait_answer(HTTP_PORT, "privreg.test", "hello v2") >= 0
    assert len(seen) > 1000
    assert not [argv for argv in seen if REG_PASSWORD in argv]
    assert REG_PASSWORD not in run.output
    # nothing on the server keeps it: Dockyard's files, temporary and Docker config dirs
    # (not in checkouts: a virtualenv or git objects there receive nothing from a pull)
    leftover = sh("grep", "-rlF", "-D", "skip", "--exclude-dir=.venv", "--exclude-dir=.git",
                  REG_PASSWORD, str(STATE), "/tmp", "/dev/shm",
                  "/root/.docker", "/var/lib/docker/image",
                  check=False)
    assert leftover.stdout.strip() == "", leftover.stdout
    assert not list(Path("/dev/shm").glob("dockyard-login.*"))
    assert not list(Path("/tmp").glob("dockyard-login.*"))
    record = json.loads((STATE / "apps/privreg/releases/v2.json").read_text())
    assert record["image_source"] == good and record["image_digest"].startswith("sha256:")

    # a wrong password: one line, and v2 keeps serving
    wrong = dockyard("-c", str(cfg), "deploy", "--image", bad,
                     env={"REG_PASSWORD": "not-the-password"}, timeout=300)
    assert wrong.returncode != 0
    assert "Traceback" not in wrong.output
    first_line = error_line(wrong.stderr)
    assert first_line.startswith("error[DY028]") and "refused the login" in first_line, \
        wrong.output
    assert "not-the-password" not in wrong.output
    assert get(HTTP_PORT, "privreg.test") == (200, "hello v2")


def error_line(stderr: str) -> str:
    """The error's line (progress lines come before it on stderr): exactly one."""
    lines = [line for line in stderr.splitlines() if line.startswith("error[")]
    assert len(lines) == 1, stderr
    return lines[0]


# -- clear errors before anything changes ----------------------------------------------------

def _audit_lines() -> int:
    log = STATE / "audit.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def _others_wrote() -> bool:
    """Other tests share this server: every new audit line is theirs, none of nolocal."""
    log = STATE / "audit.log"
    return "nolocal" not in log.read_text()


def test_local_builder_without_docker_or_for_another_platform(tmp_path: Path,
                                                              clean: None) -> None:
    cfg = hello_config(tmp_path, name="nolocal")
    cfg.write_text(cfg.read_text().replace("[build]\n", '[build]\nbuilder = "local"\n'))
    before = _audit_lines()

    # no docker command on this machine
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("ssh", "git"):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    run = dockyard("-c", str(cfg), "deploy", env={"PATH": str(bare)})
    assert run.returncode != 0 and "Traceback" not in run.output
    assert error_line(run.stderr).startswith("error[DY023]"), run.output
    assert "not installed" in run.output

    # a Docker that does not answer
    run = dockyard("-c", str(cfg), "deploy", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert run.returncode != 0 and "Traceback" not in run.output
    assert error_line(run.stderr).startswith("error[DY023]"), run.output

    # a laptop of another platform, without emulation: a docker that says it is arm64
    shim = tmp_path / "shim"
    shim.mkdir()
    real = shutil.which("docker")
    (shim / "docker").write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then echo linux/arm64; exit 0; fi\n'
        f'exec {real} "$@"\n')
    (shim / "docker").chmod(0o755)
    run = dockyard("-c", str(cfg), "deploy",
                   env={"PATH": f"{shim}:{os.environ.get('PATH', '')}"})
    assert run.returncode != 0 and "Traceback" not in run.output
    line = error_line(run.stderr)
    assert line.startswith("error[DY024]") and "linux/amd64" in line and "linux/arm64" in line, \
        run.output
    # nothing changed on the server: no release, no new audit line but the lock's
    assert not (STATE / "apps" / "nolocal" / "releases").exists() or not list(
        (STATE / "apps" / "nolocal" / "releases").iterdir())
    assert sh("docker", "ps", "-aq", "--filter", "label=dockyard.app=nolocal").stdout == ""
    assert _audit_lines() == before or _others_wrote()


# -- docs/ci.md: its workflow's shell steps, against the testbed -------------------------------

def workflow_steps(text: str) -> tuple[dict[str, str], list[dict[str, object]]]:
    """The job's env and its steps (name, env, run) from docs/ci.md's YAML block: the
    subset of YAML the workflow uses (mappings, `- ` items, `run: |` blocks)."""
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    lines = block.splitlines()
    job_env: dict[str, str] = {}
    steps: list[dict[str, object]] = []
    i = 0
    section = ""
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped == "env:" and indent == 4:
            section = "job-env"
        elif stripped == "steps:":
            section = "steps"
        elif section == "job-env" and indent == 6:
            key, value = stripped.split(": ", 1)
            job_env[key] = value
        elif section == "steps" and stripped.startswith("- "):
            steps.append({"name": "", "env": {}, "run": "", "uses": ""})
            stripped = stripped[2:]
            indent += 2
        if section == "steps" and steps and indent == 8:
            step = steps[-1]
            key, _, value = stripped.partition(":")
            if key in ("name", "uses"):
                step[key] = value.strip()
            elif key == "env":
                j = i + 1
                while j < len(lines) and lines[j].startswith(" " * 10):
                    k, v = lines[j].strip().split(": ", 1)
                    step["env"][k] = v  # type: ignore[index]
                    j += 1
                i = j - 1
            elif key == "run":
                j = i + 1
                body = []
                while j < len(lines) and (lines[j].startswith(" " * 10) or not lines[j].strip()):
                    body.append(lines[j][10:])
                    j += 1
                step["run"] = "\n".join(body) + "\n"
                i = j - 1
        i += 1
    return job_env, steps


def test_the_ci_workflow_deploys(tmp_path: Path, clean: None, private_registry: str) -> None:
    from tests.e2e.conftest import CREATED, PROXY, SSH_HOST

    job_env, steps = workflow_steps((Path(__file__).parents[2] / "docs" / "ci.md").read_text())
    names = [s["name"] or s["uses"] for s in steps]
    assert names[0] == "actions/checkout@v4" and "Deploy" in names, names
    # the checkout: a repository with the app and its dockyard.toml
    repo = tmp_path / "repo"
    shutil.copytree(HELLO, repo)
    dockerfile = repo / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("ARG BASE=busybox:1.36",
                                                         "ARG BASE=dockyard-testbed/tools"))
    cfg = repo / "dockyard.toml"
    cfg.write_text(f'[app]\nname = "ciapp"\n[server]\nhost = "{SSH_HOST}"\n'
                   '[web]\nport = 8080\ndomains = ["ciapp.test"]\ntls = false\n'
                   'healthcheck_interval = "500ms"\n'
                   f'[registry]\nserver = "{private_registry}"\nusername = "{REG_USER}"\n'
                   'password = { env = "REGISTRY_PASSWORD" }\n' + PROXY)
    CREATED.append(cfg)
    home = tmp_path / "home"
    home.mkdir()
    key = Path.home() / ".ssh" / "id_ed25519"
    port = SSH_HOST.rsplit(":", 1)[1]
    host_key = (TESTBED / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    values = {
        "github.repository": "team/ciapp", "github.sha": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "github.actor": REG_USER, "secrets.GITHUB_TOKEN": REG_PASSWORD,
        "secrets.GHCR_READ_TOKEN": REG_PASSWORD, "secrets.DEPLOY_SSH_KEY": key.read_text(),
        "secrets.DEPLOY_KNOWN_HOSTS": f"[127.0.0.1]:{port} {' '.join(host_key)}",
    }

    def expand(text: str) -> str:
        for name, value in values.items():
            text = text.replace("${{ " + name + " }}", value)
        assert "${{" not in text, text
        return text.replace("ghcr.io", private_registry)

    venv_bin = str(Path(sys_dockyard()).parent)
    env = {"PATH": f"{venv_bin}:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(home), "CI": "true", "GITHUB_ACTIONS": "true", "COLUMNS": "200"}
    env.update({k: expand(v) for k, v in job_env.items()})
    ran = []
    for step in steps:
        if step["uses"] or step["name"] == "Install Dockyard":
            continue  # the checkout is `repo`; Dockyard is this checkout's .venv (no network)
        step_env = {**env, **{k: expand(v) for k, v in step["env"].items()}}  # type: ignore[union-attr]
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               expand(str(step["run"]))], cwd=repo, env=step_env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, (step["name"], proc.stdout, proc.stderr)
        ran.append(step["name"])
        assert REG_PASSWORD not in proc.stdout + proc.stderr
    assert ran == ["Build the image", "Push it to GHCR",
                   "The SSH key, and the server's host key pinned", "Deploy"], ran
    assert wait_answer(HTTP_PORT, "ciapp.test", "hello v1") >= 0
    record = json.loads((STATE / "apps/ciapp/releases/v1.json").read_text())
    assert record["image_source"] == f"{private_registry}/team/ciapp:{values['github.sha']}"
    assert record["image_digest"].startswith("sha256:")
