"""Day two on one server (issue 14): process tables and replicas, resource limits,
destinations."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard import values
from dockyard.accessories import commands, spec
from dockyard.config.loader import load_config, parse_config
from dockyard.docker import containers as ctr
from dockyard.errors import ConfigError
from dockyard.host.command import Answer

BASE = '[app]\nname = "shop"\n[server]\nhost = "local"\n'


def test_a_process_list_and_a_process_table_mean_the_same() -> None:
    short = parse_config(BASE + '[processes]\nworker = ["python", "w.py"]\n')
    table = parse_config(BASE + '[processes.worker]\ncommand = ["python", "w.py"]\n')
    assert short.processes == table.processes
    assert short.processes["worker"].replicas == 1


def test_a_process_table_takes_replicas_memory_and_cpus() -> None:
    cfg = parse_config(BASE + '[processes.worker]\ncommand = "python w.py"\nreplicas = 3\n'
                       'memory = "256M"\ncpus = "0.5"\n')
    proc = cfg.processes["worker"]
    assert (proc.command, proc.replicas, proc.memory, proc.cpus) == (
        ["python", "w.py"], 3, "256m", 0.5)


@pytest.mark.parametrize(("text", "expected"), [
    ('memory = "1x"', 'web.memory: "1x" is not a memory size'),
    ('memory = 512', "web.memory: 512 is not a memory size"),
    ('memory = "1k"', "below Docker's minimum"),
    ("cpus = 0", "web.cpus: 0 is not a CPU limit"),
    ('cpus = "lots"', "is not a CPU limit"),
    ("cpus = true", "is not a CPU limit"),
    ("replicas = 0", "web.replicas"),
])
def test_bad_limits_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + f"[web]\n{text}\n")
    assert expected in str(err.value), str(err.value)
    assert "line 6" in str(err.value)


def test_limits_become_docker_options() -> None:
    assert values.limits("512m", 0.5) == ["--memory=512m", "--memory-swap=512m", "--cpus=0.5"]
    assert values.limits("1g", 2, swarm=True) == ["--limit-memory=1g", "--limit-cpu=2"]
    assert values.limits(None, None) == []


def test_accessory_limits_go_on_its_run_line(tmp_path: Path) -> None:
    cfg = parse_config(BASE + '[accessories.db]\nimage = "postgres:16"\nmemory = "1g"\n'
                       "cpus = 1.5\n")
    argv = commands.run(spec.resolve(cfg, "db", tmp_path), "hash").argv
    assert "--memory=1g" in argv and "--cpus=1.5" in argv


def test_memory_kills_are_read_from_inspect() -> None:
    fact = ctr.memory_kills(["shop-web-v1-aaaaaa", "shop-worker-v1-bbbbbb"])
    assert list(fact.command.argv[-2:]) == ["shop-web-v1-aaaaaa", "shop-worker-v1-bbbbbb"]
    found = fact.parse(Answer(0, "/shop-web-v1-aaaaaa true 2 536870912\n"
                                 "/shop-worker-v1-bbbbbb false 0 0\n", ""))
    assert list(found) == ["shop-web-v1-aaaaaa"]
    assert found["shop-web-v1-aaaaaa"].describe() == (
        "killed for exceeding its memory limit of 512m (restarted 2 times)")


def _files(tmp_path: Path, base: str, over: str | None) -> Path:
    path = tmp_path / "dockyard.toml"
    path.write_text(base)
    if over is not None:
        (tmp_path / "dockyard.staging.toml").write_text(over)
    return path


def test_a_destination_is_merged_over_the_file_and_suffixes_the_name(tmp_path: Path) -> None:
    path = _files(tmp_path, BASE + '[web]\ndomains = ["shop.example"]\nport = 3000\n'
                  '[env]\nMODE = "production"\nA = "1"\n',
                  '[server]\nhost = "ssh://root@198.51.100.7"\n[web]\n'
                  'domains = ["staging.shop.example"]\n[env]\nMODE = "staging"\n')
    prod, staging = load_config(path), load_config(path, "staging")
    assert prod.app.name == "shop" and staging.app.name == "shop-staging"
    assert staging.server.host == "ssh://root@198.51.100.7"
    assert staging.web.domains == ["staging.shop.example"] and staging.web.port == 3000
    assert staging.env == {"MODE": "staging", "A": "1"}


def test_a_destination_may_name_the_app(tmp_path: Path) -> None:
    path = _files(tmp_path, BASE, '[app]\nname = "shop-preview"\n')
    assert load_config(path, "staging").app.name == "shop-preview"


def test_a_missing_destination_file_says_what_to_write(tmp_path: Path) -> None:
    path = _files(tmp_path, BASE, None)
    with pytest.raises(ConfigError) as err:
        load_config(path, "staging")
    assert "dockyard.staging.toml: no such file" in str(err.value)


def test_an_error_in_the_destination_file_is_named_there(tmp_path: Path) -> None:
    path = _files(tmp_path, BASE, '\n[web]\nport = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path, "staging")
    assert "dockyard.staging.toml line 3: web.port" in str(err.value), str(err.value)


@pytest.mark.parametrize("name", ["Staging", "-x", "a b", "../x", "x" * 21])
def test_a_bad_destination_name_is_refused(tmp_path: Path, name: str) -> None:
    path = _files(tmp_path, BASE, "")
    with pytest.raises(ConfigError) as err:
        load_config(path, name)
    assert "not a destination name" in str(err.value)
