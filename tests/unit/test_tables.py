"""Tables at 80 columns never cut what a person must type (issue 19: `backups db` showed the
id `restore` needs as `20261201T222717Z-manu…`, `status` its headers as `proc…`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dockyard.cli.context import AppContext
from dockyard.config.loader import load_config
from dockyard.deploy import deploy as flows
from dockyard.deploy.progress import Progress
from dockyard.host.runner import Invocation, Runner
from dockyard.state import paths
from tests.fake import FakeHost, FakeServer
from tests.helpers import REPO, cli

DOMAIN = "the-shop-with-a-long-name.example-company.test"
BACKUP = "20261201T222717Z-manual-before-the-upgrade"


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, FakeServer]:
    server = FakeServer()
    cfg = tmp_path / "dockyard.toml"
    cfg.write_text(
        '[app]\nname = "a-shop-with-a-long-name"\n[server]\nhost = "ssh://root@fake:22"\n'
        f'[build]\ncontext = "{REPO / "examples" / "hello"}"\n'
        f'[web]\nport = 8080\ndomains = ["{DOMAIN}", "www.{DOMAIN}"]\ntls = false\n'
        '[env]\nA_RATHER_LONG_VARIABLE_NAME_FOR_THE_SHOP = "a value that goes on and on '
        'and on, longer than any terminal is wide, to see it fold"\n')
    config = load_config(cfg)
    runner = Runner(FakeHost(server), invocation=Invocation("deploy", user="someone-long",
                                                            app=config.app.name))
    flows.deploy(runner, config, cfg.parent, Progress(quiet=True))
    monkeypatch.setattr(AppContext, "host", lambda self: FakeHost(server))
    return cfg, server


def check(text: str, headers: list[str], whole: list[str]) -> None:
    assert all(len(line) <= 80 for line in text.splitlines()), text
    cells = " ".join(re.sub(r"[│┃]", " ", text).split())
    for header in headers:  # every word of every header, whole
        assert all(re.search(rf"(^|\s){re.escape(w)}(\s|$)", cells) for w in header.split()), (
            header, text)
    for value in whole:  # on one line, uncut
        assert value in text, (value, text)
    assert "…" not in text.replace("…", "", text.count("…") if "sha256" in text else 0)


def test_status_releases_history_and_domains_at_80_columns(shop: tuple[Path, FakeServer]) -> None:
    cfg, server = shop
    status = cli("-c", str(cfg), "status", env={"COLUMNS": "80"})
    assert status.returncode == 0, status.output
    container = next(c.name for c in server.app_containers("a-shop-with-a-long-name"))
    check(status.stdout, ["process", "container", "release", "health", "domains"],
          [container, "web"])
    releases = cli("-c", str(cfg), "releases", env={"COLUMNS": "80"})
    check(releases.stdout, ["release", "outcome", "kind"], ["v1 (current)"])
    history = cli("-c", str(cfg), "history", env={"COLUMNS": "80"})
    check(history.stdout, ["time (UTC)", "command", "took", "outcome"], ["deploy"])
    domains = cli("-c", str(cfg), "domains", "list", env={"COLUMNS": "80"})
    check(domains.stdout, ["domain", "https"], [DOMAIN, f"www.{DOMAIN}"])
    env = cli("-c", str(cfg), "env", "list", env={"COLUMNS": "80"})
    check(env.stdout, ["key", "value", "source"], ["A_RATHER_LONG_VARIABLE_NAME_FOR_THE_SHOP"])


def test_a_backup_id_is_never_cut(shop: tuple[Path, FakeServer]) -> None:
    cfg, server = shop
    cfg.write_text(cfg.read_text() + '[accessories.db]\nimage = "postgres:16"\n')
    d = f"{paths.BACKUPS}/a-shop-with-a-long-name/db"
    server.files[f"{d}/{BACKUP}.pgdump"] = b"PGDMP" * 1000
    server.files[f"{d}/{BACKUP}.pgdump.sha256"] = ("ab" * 32 + f"  {BACKUP}.pgdump\n").encode()
    listed = cli("-c", str(cfg), "backups", "db", env={"COLUMNS": "80"})
    assert listed.returncode == 0, listed.output
    check(listed.stdout, ["id", "kind", "size"], [BACKUP, "5,000"])
    narrow = cli("-c", str(cfg), "backups", "db", env={"COLUMNS": "60"})
    assert BACKUP in narrow.stdout  # narrower still: a less useful column goes instead


def test_a_whole_column_stays_on_one_line_while_the_table_fits() -> None:
    from rich.console import Console

    from dockyard.cli.tables import Column, fitted

    def render(width: int) -> str:
        console = Console(width=width, record=True)
        table = fitted([Column("process", key=True), Column("container", key=True),
                        Column("uptime", drop=1), Column("domains", whole=True)],
                       [["web", "hello-web-v1-a33808", "Up 2 seconds",
                         "hello.localhost\nwww.hello.localhost"]], width=width)
        with console.capture() as capture:
            console.print(table)
        return capture.get()

    wide = render(80)
    assert "hello.localhost" in wide and "www.hello.localhost" in wide  # one name per line
    narrow = render(50)  # no room: the names fold, the container stays whole
    assert "hello-web-v1-a33808" in narrow and "www.hello.localhost" not in narrow
