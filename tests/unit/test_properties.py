"""Properties over every accepted config (hypothesis): user values never reach an option
position of any argv Dockyard builds, `config` prints TOML that re-parses to the same values,
and an env file reads back as the values written.

Small counts in CI (DOCKYARD_FUZZ_EXAMPLES); bench/fuzz runs them with large counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w
from hypothesis import given
from hypothesis import strategies as st

from dockyard.accessories import backups, cron
from dockyard.accessories import commands as acc_cmds
from dockyard.accessories.spec import resolve_all
from dockyard.certs import acme
from dockyard.config.model import Config
from dockyard.deploy import build, rollout
from dockyard.deploy.progress import Progress
from dockyard.deploy.target import Target
from dockyard.docker import containers as ctr
from dockyard.docker import engine, networks
from dockyard.host.command import Command
from dockyard.host.local import LocalHost
from dockyard.host.runner import Invocation, Runner
from dockyard.router import api
from dockyard.router import config as rc
from dockyard.router import container as router
from dockyard.state import env as env_state
from tests.strategies import FUZZ, HOSTILE, app_names, configs, env_keys, env_values


def _target(cfg: Config) -> Target:
    runner = Runner(LocalHost(), invocation=Invocation("deploy", user="u", app=cfg.app.name))
    return Target(runner, cfg, Progress(quiet=True), settings=cfg.proxy)


def commands_for(cfg: Config) -> list[Command]:
    """Every command a deploy, a rollback, `run`, accessories and backups build from this
    config, as the builders make them."""
    app = cfg.app.name
    out: list[Command] = [networks.create(app, app=app), engine.pull(cfg.proxy.router_image),
                          router.run(cfg.proxy, gid=0), acme.run(cfg.proxy, gid=0),
                          cron.run(app, cfg.proxy.tools_image, "x"),
                          cron.tools_check(cfg.proxy.tools_image),
                          build.build_command(app, 3, cfg.build.dockerfile, cfg.build.args,
                                              "/tmp/ctx.tar", 1)]
    if cfg.build.image:
        out += [engine.pull(cfg.build.image), build.tag(cfg.build.image, build.image_tag(app, 3))]
    image = build.image_tag(app, 3)
    specs = [ctr.ContainerSpec(app, "web", 3, image, app, ctr.container_name(app, "web", 3),
                               "/x.env", cfg.web.command)]
    specs += [ctr.ContainerSpec(app, name, 3, image, app, ctr.container_name(app, name, 3),
                                "/x.env", command) for name, command in cfg.processes.items()]
    if cfg.release.command:
        specs.append(ctr.ContainerSpec(app, "release", 3, image, app, "r", "/x.env",
                                       cfg.release.command))
    for spec in specs:
        out += [ctr.run(spec, ""), ctr.run_once(spec, ""), ctr.run_interactive(spec, tty=False),
                ctr.exec_in(spec.name, spec.command or ["sh"], tty=True),
                ctr.logs(spec.name), ctr.remove_all([spec.name])]
    old = build.image_tag(app, 2)
    out.append(rollout.retire(_target(cfg), "slot01", [("slot01-web1", True)],
                              [f"{app}-web-v2-abcdef"], old))
    for domain in cfg.web.domains:
        out.append(acme.issue(domain, wait=5))
    for acc in resolve_all(cfg, Path("/nonexistent")):
        out += [acc_cmds.run(acc, "h"), *acc_cmds.create_volumes(acc), acc_cmds.start(acc),
                acc_cmds.exec_in(acc, acc.config.cmd or ["sh"], tty=False),
                acc_cmds.wait_ready(acc), acc_cmds.image_major(acc.image),
                backups.take(acc, "manual", cfg.proxy.tools_image),
                backups.restore(acc, backups.Backup("20261201T000000Z-manual", "20261201T000000Z"
                                                    "-manual.tar", "", "manual", 1, "x"),
                                cfg.proxy.tools_image)]
    return out


def assert_no_user_value_in_option_position(argv: tuple[str, ...]) -> None:
    if argv[:2] == ("sh", "-c"):
        script = argv[2]
        assert HOSTILE not in script, "a script must take user values as arguments"
        if 'exec "$@"' in script:  # a wrapper: the rest is the real argv
            assert_no_user_value_in_option_position(tuple(argv[4:]))
        return
    end = argv.index("--") if "--" in argv else len(argv)
    for word in argv[:end]:
        flag = word.split("=", 1)[0] if word.startswith("-") else word
        assert HOSTILE not in flag, f"{word!r} sits where {argv[0]} reads options: {argv}"


@FUZZ
@given(configs())
def test_every_accepted_config_is_safe_in_argv_api_lines_and_round_trips(
        data: dict[str, Any]) -> None:
    """One generated config, three properties (generating a config is the costly part)."""
    from dockyard.config.loader import parse_config

    cfg = Config.model_validate(data)
    # 1. no user value where docker or ssh reads options, in any command built from it
    for command in commands_for(cfg):
        assert_no_user_value_in_option_position(command.argv)
    # 2. a domain or health path is always one word of one Runtime API command
    for domain in cfg.web.domains:
        for call in (api.add_map(rc.HOSTS_MAP, domain, "slot01"),
                     api.del_map(rc.HOSTS_MAP, domain)):
            assert call.line.split(" ")[3] == domain and ";" not in call.line
    call = api.set_map(rc.HEALTH_URI_MAP, "slot01-web1", cfg.web.healthcheck)
    assert call.line.split(" ") == ["set", "map", rc.HEALTH_URI_MAP, "slot01-web1",
                                    cfg.web.healthcheck]
    # 3. `dockyard config` prints TOML that re-parses to the same values
    printed = tomli_w.dumps(cfg.model_dump(mode="json", exclude_none=True))
    assert parse_config(printed) == cfg


@FUZZ
@given(st.dictionaries(env_keys, env_values, max_size=6))
def test_an_env_file_reads_back_as_written(env: dict[str, str]) -> None:
    assert env_state.parse_env_file(env_state.format_env(env)) == env
    dotenv = env_state.format_dotenv(env)
    assert env_state.parse_dotenv(dotenv) == env


@FUZZ
@given(app_names)
def test_the_routers_network_sorts_before_every_apps_network(app: str) -> None:
    """Docker publishes a container's ports through its network that sorts first by name: the
    router's own must win against any app's (docker/networks.py)."""
    assert networks.app_network(app) > networks.ROUTER_NETWORK
