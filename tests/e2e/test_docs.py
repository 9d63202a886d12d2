"""The documentation, run: every tagged shell block of docs/guide.md in order against the
testbed, and `dockyard explain` against `--dry-run` (same commands, same order)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import CREATED, HTTPS_PORT, hello_config, shared_proxy
from tests.helpers import REPO, dockyard

GUIDE = REPO / "docs" / "guide.md"
BLOCK = re.compile(r"^```sh guide\n(.*?)^```$", re.S | re.M)


def guide_blocks() -> list[str]:
    return BLOCK.findall(GUIDE.read_text())


def substitute(block: str, root: Path) -> str:
    """The guide's example values -> the testbed's (server, images, the router settings the
    other tests share, the test CA and its ports)."""
    test_proxy = shared_proxy().replace("[proxy]\n", "").replace(
        'acme_email = "ops@dockyard.test"\n', "")
    for old, new in [
        ("ssh://root@203.0.113.10", "ssh://root@127.0.0.1:2222"),
        ("guestbook.example.com", "guestbook.test"),
        ('image = "postgres:16"', 'image = "dockyard-testbed/postgres"'),
        ('args = { VERSION = "v1" }', 'args = { BASE = "dockyard-testbed/python", VERSION = "v1" }'),
        ('acme_email = "you@example.com"\n', 'acme_email = "ops@dockyard.test"\n' + test_proxy),
        ("curl -fsS ", f"curl -fsS --cacert {root} --connect-to "
                       f"guestbook.test:443:127.0.0.1:{HTTPS_PORT} "),
    ]:
        block = block.replace(old, new)
    return block


def test_the_guide_has_tagged_blocks_for_the_whole_path() -> None:
    text = "\n".join(guide_blocks())
    for needle in ("cat > dockyard.toml", "dockyard server check", "dockyard server setup",
                   "dockyard router apply", "dockyard env set POSTGRES_PASSWORD -",
                   "dockyard deploy", "curl -fsS https://", "dockyard backup db",
                   "dockyard rollback", "dockyard history"):
        assert needle in text, needle


def test_every_guide_block_runs_against_the_testbed(clean: None, tmp_path: Path,
                                                    issuer_root: Path) -> None:
    app = tmp_path / "guestbook"
    shutil.copytree(REPO / "examples" / "guestbook", app,
                    ignore=shutil.ignore_patterns("__pycache__", "dockyard.toml"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "dockyard"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m dockyard "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "COLUMNS": "200",
           "PYTHONPATH": str(REPO / "src")}
    CREATED.append(app / "dockyard.toml")  # written by the guide's first block
    blocks = guide_blocks()
    assert len(blocks) >= 10
    for number, block in enumerate(blocks, 1):
        script = substitute(block, issuer_root)
        run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=app, env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, (
            f"guide block {number} failed (exit {run.returncode}):\n{script}\n--- stdout\n"
            f"{run.stdout[-3000:]}\n--- stderr\n{run.stderr[-3000:]}")
    backups = list((tmp_path / "guestbook-backups").glob("*.pgdump"))
    assert len(backups) == 1
    # the release numbers the guide names: env set before the first deploy made none; v1,
    # v2, and the rollback v3 (from v1)
    releases = dockyard("-c", str(app / "dockyard.toml"), "--json", "releases", env=env)
    made = [(r["name"], r["kind"], r["outcome"]) for r in json.loads(releases.stdout)]
    assert made == [("v3", "rollback", "live"), ("v2", "deploy", "superseded"),
                    ("v1", "deploy", "superseded")], made
    text = GUIDE.read_text()
    assert "This makes release v1." in text and "makes release v3 from v1" in text
    # a healthy app logs no error: the router's checks close cleanly (issue 19)
    logs = dockyard("-c", str(app / "dockyard.toml"), "logs", "web", "-n", "1000", env=env)
    assert logs.returncode == 0 and "guestbook v1 listening" in logs.stdout, logs.output
    assert "Traceback" not in logs.output and "ConnectionResetError" not in logs.output


def normalized(text: str) -> list[str]:
    """Plan lines with the parts that may differ between two runs made equal: container name
    suffixes and invocation ids (random), the routes digest the write expects and the router
    slot a first deploy claims (other tests' apps, deploying in parallel, change the routes
    between the two runs)."""
    lines = []
    for line in text.splitlines():
        if line.startswith(("# dry run:", "# explain:")):
            continue
        line = re.sub(r"-v(\d+)-[0-9a-f]{6}\b", r"-v\1-XXXXXX", line)
        line = re.sub(r'"invocation":"[0-9a-f]+"', '"invocation":"ID"', line)
        line = re.sub(r"\bslot\d\d\b", "slotNN", line)
        lines.append(re.sub(r"\b[0-9a-f]{64}\b", "DIGEST", line))
    return lines


def test_explain_deploy_has_exactly_the_dry_run_commands_with_a_sentence_each(
        clean: None, tmp_path: Path) -> None:
    for where in ("plain", "git"):
        directory = tmp_path / where
        cfg = hello_config(directory, name="explain")
        if where == "git":
            for argv in (["git", "init", "-q"], ["git", "add", "-A"],
                         ["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm",
                          "x"]):
                subprocess.run(argv, cwd=directory, check=True, capture_output=True)
        for state in ("first deploy", "second deploy"):
            dry = dockyard("-c", str(cfg), "--dry-run", "deploy", timeout=300)
            explained = dockyard("-c", str(cfg), "explain", "deploy", timeout=300)
            assert dry.returncode == 0 and explained.returncode == 0, explained.output
            plan = normalized(dry.stdout)
            lines = normalized(explained.stdout)
            commands = [line for line in lines if not line.startswith("    # ")]
            assert commands == plan, (where, state)
            assert len(plan) > 10
            # each line is followed by its own two sentences
            for i, line in enumerate(lines):
                if not line.startswith("    # "):
                    assert lines[i + 1].startswith("    # why: "), line
                    assert len(lines[i + 1]) > len("    # why: ") + 10, lines[i + 1]
                    assert lines[i + 2].startswith("    # if it fails: "), line
            assert "docker build" in explained.stdout or "docker" in explained.stdout
            if state == "first deploy":
                run = dockyard("-c", str(cfg), "deploy", timeout=300)
                assert run.returncode == 0, run.output
        dockyard("-c", str(cfg), "remove", "--yes")
