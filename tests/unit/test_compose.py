"""Compose files: read as docker compose reads them (merge, extends, include, profiles,
interpolation), translated into Dockyard's terms, and every key that cannot be honoured said
(an error or a warning naming the service and key) before anything changes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dockyard.compose.load import FromEnv, Interpolator, load, read_dotenv
from dockyard.config.loader import load_config
from dockyard.config.model import Config
from dockyard.deploy import deploy as flows
from dockyard.deploy.progress import Progress
from dockyard.errors import ConfigError
from dockyard.state import paths
from tests.fake import FakeServer
from tests.helpers import REPO, cli
from tests.unit.test_flows import PROXY, runner, served

HELLO = REPO / "examples" / "hello"

APP = """
services:
  app:
    build: {context: ., args: {VERSION: "${APP_VERSION:-v1}"}}
    ports: ["8000:8000"]
    environment:
      PGHOST: db
      DATABASE_PASSWORD: ${DB_PASSWORD}
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  migrate:
    build: {context: ., args: {VERSION: "${APP_VERSION:-v1}"}}
    command: python3 /app/migrate.py
  worker:
    build: {context: ., args: {VERSION: "${APP_VERSION:-v1}"}}
    command: ["python3", "/app/worker.py"]
    environment: [PGHOST=db, ROLE=worker]
  db:
    image: postgres:16
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: ${DB_PASSWORD}
    volumes: [dbdata:/var/lib/postgresql/data]
  cache:
    image: redis:7
volumes:
  dbdata: {}
"""


def project(tmp_path: Path, compose: str = APP, toml: str = "", *, env: str = "",
            name: str = "docker-compose.yml", files: dict[str, str] | None = None) -> Path:
    (tmp_path / name).write_text(textwrap.dedent(compose))
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    if env:
        (tmp_path / ".env").write_text(env)
    for rel, text in (files or {}).items():
        (tmp_path / rel).write_text(textwrap.dedent(text))
    path = tmp_path / "dockyard.toml"
    path.write_text(f'[app]\nname = "shop"\n[server]\nhost = "ssh://root@fake:22"\n'
                    f'{toml or "[compose]"}\n')
    return path


def read(path: Path, monkeypatch: pytest.MonkeyPatch | None = None, **environ: str) -> Config:
    if monkeypatch is not None:
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
    return load_config(path)


def fails(path: Path, code: str, *needles: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.code == code, info.value.message
    for needle in needles:
        assert needle in info.value.message, info.value.message
    return info.value.message


def notes(cfg: Config) -> str:
    assert cfg.composition is not None
    return "\n".join(cfg.composition.lines())


# -- what each service becomes ----------------------------------------------------------------

def test_each_service_becomes_web_process_release_or_accessory(tmp_path: Path) -> None:
    cfg = read(project(tmp_path, env="DB_PASSWORD=s3cret-value\n"))
    c = cfg.composition
    assert c is not None
    assert {p.service: p.role for p in c.plans} == {
        "app": "web", "migrate": "release", "worker": "process", "db": "accessory",
        "cache": "accessory"}
    assert cfg.web.port == 8000 and cfg.build.args == {"VERSION": "v1"}
    assert cfg.release.command == ["python3", "/app/migrate.py"]
    assert cfg.processes["worker"].command == ["python3", "/app/worker.py"]
    assert c.extras["worker"].env == {"ROLE": "worker"}  # its own; PGHOST is the app's
    assert cfg.env == {"PGHOST": "db"}  # plain values only
    db = cfg.accessories["db"]
    assert db.kind == "postgres" and db.volumes == ["dbdata:/var/lib/postgresql/data"]
    assert db.env == {"POSTGRES_USER": "app"} and db.secrets == ["POSTGRES_PASSWORD"]
    assert cfg.accessories["cache"].kind == "redis"
    # values from .env are secrets: never in the tables, stored on the server at deploy
    assert c.secrets == {"DATABASE_PASSWORD": "s3cret-value", "POSTGRES_PASSWORD": "s3cret-value"}
    assert "s3cret" not in cfg.model_dump_json()
    said = notes(cfg)
    assert "ports: not published: the router takes the traffic" in said


def test_dockyard_toml_wins_over_the_compose_file(tmp_path: Path) -> None:
    cfg = read(project(tmp_path, toml='[compose]\nweb = "app"\n[web]\nport = 9000\n'
                       'domains = ["shop.example"]\n[env]\nPGHOST = "elsewhere"\n'))
    assert cfg.web.port == 9000 and cfg.web.domains == ["shop.example"]
    assert cfg.env["PGHOST"] == "elsewhere"


def test_the_routed_service_is_named_by_toml_extension_label_or_its_ports(tmp_path: Path) -> None:
    two = """
    services:
      api: {build: ., ports: ["8000:8000"]}
      admin: {build: ., ports: ["9000:9000"], command: admin}
    """
    fails(project(tmp_path, two), "DY008", "which service is routed", "api, admin",
          '[compose] web = "SERVICE"')
    cfg = read(project(tmp_path, two, '[compose]\nweb = "admin"'))
    assert cfg.web.port == 9000 and cfg.processes["api"] is not None
    ext = two.replace("admin: {build: .,", "admin: {x-dockyard: {role: web}, build: .,")
    assert read(project(tmp_path, ext)).web.port == 9000
    label = two.replace("admin: {build: .,", "admin: {labels: {dockyard.role: web}, build: .,")
    assert read(project(tmp_path, label)).web.port == 9000
    top = "x-dockyard: {web: admin}\n" + textwrap.dedent(two)
    assert read(project(tmp_path, top)).web.port == 9000
    fails(project(tmp_path, two, '[compose]\nweb = "nope"'), "DY008", "'nope' is not an active "
          "service", "admin, api")
    fails(project(tmp_path, two, '[compose]\nweb = ["api", "admin"]'), "DY008",
          "service 'admin', domains")


def test_a_compose_edit_takes_effect_without_touching_dockyard_toml(tmp_path: Path) -> None:
    path = project(tmp_path)
    assert "mailer" not in read(path).processes
    edited = APP.replace("  cache:\n    image: redis:7\n", "") + textwrap.dedent("""
      mailer:
        build: {context: ., args: {VERSION: "${APP_VERSION:-v1}"}}
        command: python3 /app/mail.py
        environment: {SMTP_HOST: mail}
    """).replace("\n", "\n  ").replace("\n  volumes:", "\nvolumes:")
    edited = APP.replace("  cache:\n    image: redis:7\n",
                         "  mailer:\n    build: {context: ., args: {VERSION: \"${APP_VERSION:-v1}\"}}\n"
                         "    command: python3 /app/mail.py\n    environment: {SMTP_HOST: mail}\n")
    (tmp_path / "docker-compose.yml").write_text(edited)
    cfg = read(path)
    assert cfg.processes["mailer"].command == ["python3", "/app/mail.py"]
    assert "cache" not in cfg.accessories
    assert cfg.composition is not None and cfg.composition.extras["mailer"].env == {
        "SMTP_HOST": "mail"}


# -- interpolation, .env, env_file --------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected", "secret"), [
    ("${A}", "a", True), ("$A", "a", True), ("${NOPE:-dflt}", "dflt", True),
    ("${EMPTY:-dflt}", "dflt", True), ("${EMPTY-dflt}", "", True), ("${A:+alt}", "alt", True),
    ("${NOPE:+alt}", "", True), ("$$A", "$A", False), ("plain", "plain", False),
    ("x-${A}-y", "x-a-y", True), ("${NOPE-${A}}", "a", True),
])
def test_interpolation_as_compose_does_it(text: str, expected: str, secret: bool) -> None:
    out = Interpolator({"A": "a", "EMPTY": ""}, "f.yml")(text, "k")
    assert out == expected and isinstance(out, FromEnv) == secret


def test_a_required_variable_that_is_not_set_stops_with_its_message(tmp_path: Path) -> None:
    fails(project(tmp_path, APP.replace("${DB_PASSWORD}", "${DB_PASSWORD:?set a password}")),
          "DY007", "${DB_PASSWORD} is required: set a password")


def test_an_unset_variable_is_empty_and_said(tmp_path: Path) -> None:
    assert "${DB_PASSWORD} is not set" in notes(read(project(tmp_path)))


def test_the_environment_wins_over_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = project(tmp_path, env="DB_PASSWORD=from-dotenv\nAPP_VERSION=v7\n")
    cfg = read(path, monkeypatch, DB_PASSWORD="from-the-shell")
    assert cfg.composition is not None
    assert cfg.composition.secrets["POSTGRES_PASSWORD"] == "from-the-shell"
    assert cfg.build.args == {"VERSION": "v7"}


def test_dotenv_lines(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text('# c\nexport A=1\nB="two words"\nC=3 # note\nD=\n')
    assert read_dotenv(tmp_path / ".env") == {"A": "1", "B": "two words", "C": "3", "D": ""}
    (tmp_path / ".env").write_text("not a line\n")
    with pytest.raises(ConfigError, match="line 1: not KEY=VALUE"):
        read_dotenv(tmp_path / ".env")


def test_env_file_values_are_secrets_and_a_missing_one_stops(tmp_path: Path) -> None:
    compose = APP.replace("    command: [\"python3\", \"/app/worker.py\"]\n",
                          "    command: [\"python3\", \"/app/worker.py\"]\n    env_file: worker.env\n")
    cfg = read(project(tmp_path, compose, files={"worker.env": "API_TOKEN=tok-123456789\n"}))
    assert cfg.composition is not None and cfg.composition.secrets["API_TOKEN"] == "tok-123456789"
    assert "API_TOKEN" not in cfg.env
    (tmp_path / "worker.env").unlink()
    fails(tmp_path / "dockyard.toml", "DY008", "service 'worker', env_file", "no such file")


def test_two_services_giving_one_secret_two_values_stop(tmp_path: Path) -> None:
    compose = APP.replace("      POSTGRES_PASSWORD: ${DB_PASSWORD}",
                          "      POSTGRES_PASSWORD: ${DB_PASSWORD}\n      DATABASE_PASSWORD: ${OTHER}")
    fails(project(tmp_path, compose, env="DB_PASSWORD=a-value\nOTHER=b-value\n"), "DY008",
          "service 'db', environment.DATABASE_PASSWORD", "another value")


# -- several files, extends, include, profiles ------------------------------------------------

BASE = """
services:
  app:
    build: .
    command: ["serve"]
    ports: ["8000:8000"]
    environment: {A: "1", B: "1"}
    volumes: ["data:/data", "logs:/logs"]
  worker:
    build: .
    command: work
volumes: {data: {}, logs: {}}
"""
OVERRIDE = """
services:
  app:
    command: ["serve", "--prod"]
    ports: ["9000:9000"]
    environment: [B=2, C=3]
    volumes: ["other:/data"]
  debug:
    build: .
    command: debug
    profiles: [debug]
volumes: {other: {}}
"""


def test_several_files_merge_as_compose_merges_them(tmp_path: Path) -> None:
    (tmp_path / "prod.yml").write_text(textwrap.dedent(OVERRIDE))
    path = project(tmp_path, BASE, '[compose]\nfiles = ["docker-compose.yml", "prod.yml"]\n'
                   'web = "app"')
    merged = load([tmp_path / "docker-compose.yml", tmp_path / "prod.yml"], environ={})
    app = merged.services["app"]
    assert app["command"] == ["serve", "--prod"]  # replaced
    assert app["environment"] == {"A": "1", "B": "2", "C": "3"}  # merged by key
    assert [p["target"] for p in app["ports"]] == [8000, 9000]  # appended
    assert {v["target"]: v["source"] for v in app["volumes"]} == {"/data": "other",
                                                                  "/logs": "logs"}
    assert "debug" not in merged.services and merged.inactive == ["debug"]
    cfg = read(path)
    assert cfg.web.command == ["serve", "--prod"] and cfg.web.port == 8000
    assert "debug" not in cfg.processes
    assert "debug: not started (its profiles are not enabled)" in notes(cfg)


def test_profiles_from_the_file_or_the_environment(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "prod.yml").write_text(textwrap.dedent(OVERRIDE))
    files = '[compose]\nfiles = ["docker-compose.yml", "prod.yml"]\nweb = "app"\n'
    cfg = read(project(tmp_path, BASE, files + 'profiles = ["debug"]'))
    assert cfg.processes["debug"].command == ["debug"]
    cfg = read(project(tmp_path, BASE, files), monkeypatch, COMPOSE_PROFILES="debug,other")
    assert "debug" in cfg.processes


def test_depending_on_a_disabled_profile_stops(tmp_path: Path) -> None:
    compose = BASE.replace("    command: work\n", "    command: work\n    profiles: [jobs]\n"
                           ).replace("    build: .\n    command: [\"serve\"]\n",
                                     "    build: .\n    command: [\"serve\"]\n"
                                     "    depends_on: [worker]\n")
    fails(project(tmp_path, compose), "DY007", "depends on 'worker'", "[compose] profiles")


def test_extends_in_the_file_and_from_another(tmp_path: Path) -> None:
    compose = """
    services:
      base: {build: ., environment: {A: "1"}, command: base, x-dockyard: {role: skip}}
      app: {extends: base, ports: ["8000:8000"], command: serve}
      worker: {extends: {file: common.yml, service: job}, build: .}
    """
    cfg = read(project(tmp_path, compose, files={"common.yml": """
        services:
          job: {command: work, environment: {B: "2"}}
        """}))
    assert cfg.web.command == ["serve"] and cfg.env == {"A": "1"}
    assert cfg.processes["worker"].command == ["work"]
    (tmp_path / "common.yml").unlink()
    fails(tmp_path / "dockyard.toml", "DY007", "extends", "cannot be read")


def test_include_adds_the_services_of_another_file(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "compose.yml").write_text("services:\n  db:\n    image: postgres:16\n")
    compose = "include: [db/compose.yml]\nservices:\n  app: {build: ., ports: ['80:8000']}\n"
    cfg = read(project(tmp_path, compose))
    assert cfg.accessories["db"].image == "postgres:16"
    compose = "include: [nope.yml]\nservices:\n  app: {build: ., ports: ['80:8000']}\n"
    fails(project(tmp_path, compose), "DY007", "include", "cannot be read")


# -- what cannot be honoured: an error or a warning, per key class ---------------------------

@pytest.mark.parametrize(("service", "needles"), [
    ("app: {build: ., ports: ['80:80'], network_mode: host}", ("network_mode", "host")),
    ("app: {build: ., ports: ['80:80'], container_name: shop}", ("container_name",)),
    ("app: {build: {context: ., secrets: [npm]}, ports: ['80:80']}", ("build.secrets",)),
    ("app: {build: 'https://github.com/me/app.git', ports: ['80:80']}", ("remote build",)),
    ("app: {ports: ['80:80']}", ("needs build: or image:",)),
])
def test_routed_service_keys_that_cannot_be_honoured_stop(tmp_path: Path, service: str,
                                                          needles: tuple[str, ...]) -> None:
    fails(project(tmp_path, f"services:\n  {service}\n"), "DY008", "service 'app'", *needles)


@pytest.mark.parametrize(("extra", "needles"), [
    ("other: {build: ./other, command: x}", ("'other', build", "one image per app")),
    ("store: {build: ., volumes: ['d:/d'], x-dockyard: {role: accessory}}", ("'store'", "image:")),
    ("Bad_Name!: {build: ., command: x}", ("Bad_Name!", "rename")),
    ("job: {build: ., x-dockyard: {role: boss}}", ("'boss' is not a role",)),
    ("idle: {build: .}", ("'idle', command",)),
])
def test_other_services_that_cannot_be_honoured_stop(tmp_path: Path, extra: str,
                                                     needles: tuple[str, ...]) -> None:
    (tmp_path / "other").mkdir(exist_ok=True)
    compose = f"services:\n  app: {{build: ., ports: ['80:80']}}\n  {extra}\n"
    fails(project(tmp_path, compose), "DY008", *needles)


@pytest.mark.parametrize(("extra", "needle"), [
    ("worker: {build: ., command: w, cap_add: [NET_ADMIN]}", "'worker', cap_add: not honoured"),
    ("worker: {build: ., command: w, ports: ['9000:9000']}", "'worker', ports: not published"),
    ("worker: {build: ., command: w, volumes: ['./src:/app']}", "is not mounted on the server"),
    ("worker: {build: ., command: w, volumes: ['/cache']}", "anonymous volume"),
    ("worker: {build: ., command: w, restart: 'no'}", "Dockyard keeps processes running"),
    ("worker: {build: ., command: w, container_name: w1}", "named per release"),
    ("db: {image: postgres:16, ports: ['5432:5432']}", "on the server's 127.0.0.1 only"),
    ("db: {image: postgres:16, volumes: ['./data:/var/lib/postgresql/data']}",
     "use a named volume"),
])
def test_what_is_honoured_differently_is_a_warning(tmp_path: Path, extra: str,
                                                   needle: str) -> None:
    compose = f"services:\n  app: {{build: ., ports: ['80:80']}}\n  {extra}\n"
    cfg = read(project(tmp_path, compose, '[compose]\nweb = "app"'))
    assert needle in notes(cfg)


def test_top_level_secrets_and_configs_are_reported(tmp_path: Path) -> None:
    compose = ("services:\n  app: {build: ., ports: ['80:80'], secrets: [token]}\n"
               "secrets:\n  token: {file: ./token.txt}\nconfigs:\n  nginx: {file: ./n.conf}\n")
    said = notes(read(project(tmp_path, compose)))
    assert "secrets: not mounted" in said and "configs: not mounted" in said


def test_healthcheck_urls_become_the_router_check(tmp_path: Path) -> None:
    compose = ("services:\n  app:\n    build: .\n    ports: ['80:8000']\n    healthcheck:\n"
               "      test: ['CMD-SHELL', 'curl -fsS http://localhost:8000/healthz || exit 1']\n")
    cfg = read(project(tmp_path, compose))
    assert cfg.web.healthcheck == "/healthz"
    compose = compose.replace("curl -fsS http://localhost:8000/healthz || exit 1", "pgrep serve")
    assert "not a URL Dockyard can request" in notes(read(project(tmp_path, compose)))


def test_a_published_accessory_port_keeps_the_address_the_file_names(tmp_path: Path) -> None:
    compose = ("services:\n  app: {build: ., ports: ['80:80']}\n"
               "  db: {image: postgres:16, ports: ['0.0.0.0:15432:5432']}\n")
    cfg = read(project(tmp_path, compose))
    assert cfg.accessories["db"].port == "0.0.0.0:15432:5432"
    compose = compose.replace("0.0.0.0:15432:5432", "15432:5432")
    assert read(project(tmp_path, compose)).accessories["db"].port == "15432:5432"


def test_limits_replicas_grace_and_target(tmp_path: Path) -> None:
    compose = """
    services:
      app:
        build: {context: ., target: prod, network: host}
        ports: ["80:8000"]
        stop_grace_period: 1m30s
        deploy: {replicas: 3, resources: {limits: {memory: 512M, cpus: "0.5"}}}
    """
    cfg = read(project(tmp_path, compose))
    assert cfg.web.replicas == 3 and cfg.web.memory == "512m" and cfg.web.cpus == 0.5
    assert cfg.build.target == "prod" and cfg.deploy.stop_timeout == 90
    assert "build.network: not honoured" in notes(cfg)


def test_a_process_of_its_own_image_with_entrypoint_user_and_volumes(tmp_path: Path) -> None:
    compose = """
    services:
      app: {build: ., ports: ["80:8000"], volumes: ["media:/app/media"]}
      proxy:
        x-dockyard: {role: process}
        image: nginx:1.25
        entrypoint: ["/docker-entrypoint.sh", "-v"]
        command: nginx -g "daemon off;"
        user: "101"
        working_dir: /srv
        labels: {team: web, dockyard.app: forged}
        volumes: ["media:/srv/media:ro"]
    volumes: {media: {}}
    """
    cfg = read(project(tmp_path, compose))
    c = cfg.composition
    assert c is not None
    extras = c.extras["proxy"]
    assert extras.image == "nginx:1.25" and extras.labels == {"team": "web"}
    assert extras.options() == ["--entrypoint=/docker-entrypoint.sh", "--user=101",
                                "--workdir=/srv", "--volume=shop-media:/srv/media:ro"]
    assert cfg.processes["proxy"].command == ["-v", "nginx", "-g", "daemon off;"]
    assert c.volumes == ["shop-media"]  # created labelled, once
    assert c.extras["web"].volumes == ["shop-media:/app/media"]


def test_compose_with_several_servers_is_refused(tmp_path: Path) -> None:
    path = project(tmp_path)
    path.write_text('[app]\nname = "shop"\n[server]\nhosts = ["ssh://root@a", "ssh://root@b"]'
                    "\n[compose]\n")
    fails(path, "DY008", "one server")


def test_a_broken_compose_file_is_one_line(tmp_path: Path) -> None:
    fails(project(tmp_path, "services:\n  app: [\n"), "DY007", "docker-compose.yml: line")
    fails(project(tmp_path, "- a list\n"), "DY007", "top level must be a mapping")
    path = project(tmp_path)
    (tmp_path / "docker-compose.yml").unlink()
    fails(path, "DY001", "docker-compose.yml: no such file")


# -- init --compose ---------------------------------------------------------------------------

def test_init_compose_writes_a_toml_that_points_at_the_file(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "dockyard.toml").unlink()
    run = cli("-c", str(tmp_path / "dockyard.toml"), "init", "--compose")
    assert run.returncode == 0, run.output
    text = (tmp_path / "dockyard.toml").read_text()
    assert 'file = "docker-compose.yml"' in text and 'web = "app"' in text
    assert "# port = 8000" in text  # the compose file says it: it stays the source
    for line in ("app: routed (the web process)", "worker: process", "migrate: the release",
                 "db: accessory (postgres"):
        assert line in run.output, run.output
    cfg = load_config(tmp_path / "dockyard.toml")
    assert cfg.web.port == 8000
    again = cli("-c", str(tmp_path / "other.toml"), "init", "--compose", "nope.yml")
    assert again.returncode != 0 and "nope.yml: no such file" in again.output


# -- a deploy on the fake server ------------------------------------------------------------

def test_a_compose_deploy_stores_secrets_by_stdin_and_runs_each_process_as_the_file_says(
        tmp_path: Path) -> None:
    compose = f"""
    services:
      app:
        build: {{context: {HELLO}}}
        ports: ["8080:8080"]
        environment: {{GREETING: hi, TOKEN: "${{TOKEN}}"}}
      sidecar:
        x-dockyard: {{role: process}}
        image: dockyard-testbed/tools
        entrypoint: ["sh", "-c"]
        command: ["sleep 1000"]
        volumes: ["cache:/cache"]
        labels: {{team: ops}}
    """
    path = project(tmp_path, compose, '[compose]\n[web]\ndomains = ["shop.test"]\ntls = false\n'
                   + PROXY, env="TOKEN=tok-5ecret-9f8e7d\n")
    cfg = load_config(path)
    server = FakeServer()
    result = flows.deploy(runner(server, app="shop"), cfg, tmp_path, Progress(quiet=True))
    assert result.release.name == "v1" and served(server, "shop.test")
    env = server.read(f"{paths.ROOT}/apps/shop/env.server")
    assert "TOKEN=tok-5ecret-9f8e7d" in env
    audit = "\n".join(e["command"] for e in server.audit())
    assert "tok-5ecret" not in audit and "tok-5ecret" not in repr(server.commands)
    [sidecar] = [c for c in server.app_containers("shop")
                 if c.labels.get("dockyard.process") == "sidecar"]
    assert sidecar.image == "dockyard-testbed/tools" and sidecar.labels["team"] == "ops"
    run = next(line for line in audit.splitlines() if "--name=shop-sidecar-v1" in line)
    assert "--entrypoint=sh" in run and "--volume=shop-cache:/cache" in run
    assert run.endswith("-- dockyard-testbed/tools -c 'sleep 1000'") or run.endswith(
        "-- dockyard-testbed/tools -c sleep\\ 1000"), run
    assert "docker volume create --label=dockyard.app=shop -- shop-cache" in audit
    stores = [e["command"] for e in server.audit() if "<env file:" in e["command"]]
    # the same values again: nothing stored a second time
    flows.deploy(runner(server, app="shop"), load_config(path), tmp_path, Progress(quiet=True))
    again = [e["command"] for e in server.audit() if "<env file:" in e["command"]]
    assert len(stores) == 1 and again == stores, stores


def test_status_names_the_service_each_process_comes_from(tmp_path: Path) -> None:
    from dockyard.deploy.status import _shown_process

    cfg = read(project(tmp_path, env="DB_PASSWORD=s3cret-value\n"))
    assert _shown_process(cfg, "web") == "web (app)"
    assert _shown_process(cfg, "worker") == "worker"
    assert cfg.composition is not None and cfg.composition.process_of("app") == "web"


def test_several_routed_services_each_switch_on_their_own_names(tmp_path: Path) -> None:
    from dockyard.deploy.remove import remove_app

    compose = f"""
    services:
      app:
        build: {{context: {HELLO}}}
        ports: ["8080:8080"]
      admin:
        build: {{context: {HELLO}}}
        command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
        expose: ["8080"]
    """
    toml = ('[compose]\nweb = ["app", "admin"]\n[compose.domains]\nadmin = ["admin.test"]\n'
            '[web]\ndomains = ["shop.test"]\ntls = false\n' + PROXY)
    path = project(tmp_path, compose, toml)
    cfg = load_config(path)
    assert cfg.composition is not None and cfg.composition.routes["admin"].domains == [
        "admin.test"]
    assert "admin: routed (process 'admin', on admin.test): port 8080" in notes(cfg)
    server = FakeServer()
    for number in (1, 2):
        flows.deploy(runner(server, app="shop"), load_config(path), tmp_path,
                     Progress(quiet=True))
        [web] = served(server, "shop.test")
        [admin] = served(server, "admin.test")
        assert web.startswith(f"shop-web-v{number}-") and admin.startswith(
            f"shop-admin-v{number}-"), (web, admin)
    assert f"{paths.ROOT}/apps/shop.admin/route.json" in server.files
    # no longer routed: its route goes with the next deploy, the process stays
    path.write_text(path.read_text().replace('web = ["app", "admin"]', 'web = "app"'))
    flows.deploy(runner(server, app="shop"), load_config(path), tmp_path, Progress(quiet=True))
    assert not served(server, "admin.test") and served(server, "shop.test")
    assert f"{paths.ROOT}/apps/shop.admin/route.json" not in server.files
    # and a remove takes every route of the app
    path.write_text(path.read_text().replace('web = "app"', 'web = ["app", "admin"]'))
    flows.deploy(runner(server, app="shop"), load_config(path), tmp_path, Progress(quiet=True))
    assert served(server, "admin.test")
    remove_app(runner(server, command="remove", app="shop"), load_config(path),
               Progress(quiet=True), volumes_too=False)
    assert not served(server, "admin.test") and not served(server, "shop.test")
    assert not any("/apps/shop" in f and f.endswith("route.json") for f in server.files)


def test_a_second_routed_service_needs_names_of_its_own(tmp_path: Path) -> None:
    compose = ("services:\n  app: {build: ., ports: ['80:80']}\n"
               "  admin: {build: ., expose: ['81'], command: a}\n")
    fails(project(tmp_path, compose, '[compose]\nweb = ["app", "admin"]'), "DY008",
          "service 'admin', domains", "[compose.domains] admin")
