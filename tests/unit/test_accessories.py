"""Accessories without a server: config, names on the server, the PostgreSQL upgrade rule,
backup names and file kinds, the crontab, and the commands they produce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dockyard import scripts
from dockyard.accessories import backups, cron, flows
from dockyard.accessories import commands as cmds
from dockyard.accessories.spec import resolve, resolve_all
from dockyard.config.model import Config, detect_type
from dockyard.errors import DockyardError


def config(accessories: dict[str, Any], **extra: Any) -> Config:
    return Config.model_validate({"app": {"name": "shop"}, "server": {"host": "local"},
                                  "accessories": accessories, **extra})


def test_type_is_detected_from_the_image_name() -> None:
    assert detect_type("postgres:16") == "postgres"
    assert detect_type("docker.io/library/postgres:16.2-alpine") == "postgres"
    assert detect_type("dockyard-testbed/postgres") == "postgres"
    assert detect_type("redis:7") == "redis"
    assert detect_type("ghcr.io/acme/redis-stack:7@sha256:abc") == "redis"
    assert detect_type("minio/minio") == "volume"
    assert detect_type("ghcr.io/postgres-tools/minio:1") == "volume"  # only the last part counts
    assert detect_type("bitnami/postgresql:16") == "postgres"
    # exact names: a misspelling or a lookalike is not taken for one
    assert detect_type("postgress:16") == "volume"
    assert detect_type("my-postgres-exporter:1") == "volume"
    assert detect_type("redisinsight:2") == "volume"
    cfg = config({"db": {"image": "ghcr.io/x/mydb:1", "type": "postgres"}})
    assert cfg.accessories["db"].kind == "postgres"


@pytest.mark.parametrize("schedule,expect", [
    ("daily", "0 3 * * *"), ("@hourly", "0 * * * *"), ("weekly", "0 3 * * 0"),
    ("*/15 * * * *", "*/15 * * * *"), ("30  2 * * 1-5", "30 2 * * 1-5"),
])
def test_schedules(schedule: str, expect: str) -> None:
    cfg = config({"db": {"image": "postgres:16", "backup": {"schedule": schedule}}})
    assert cfg.accessories["db"].backup is not None
    assert cfg.accessories["db"].backup.schedule == expect
    assert cfg.accessories["db"].backup.keep == 7


@pytest.mark.parametrize("bad,needle", [
    ({"db": {"image": "postgres:16", "backup": {"schedule": "every day"}}}, "not a schedule"),
    ({"db": {"image": "postgres:16", "volumes": ["data"]}}, "not a volume"),
    ({"db": {"image": "postgres:16", "volumes": ["data:relative"]}}, "not a volume"),
    ({"db": {"image": "postgres:16", "port": "54321:5432:1"}}, "not a port"),
    ({"db": {"image": "postgres:16", "secrets": ["BAD-KEY"]}}, "not a valid variable"),
    ({"db": {"image": "postgres:16", "files": ["conf.d"]}}, "not a file mapping"),
    ({"Web": {"image": "redis:7"}}, "not a valid accessory name"),
    ({"web": {"image": "redis:7"}}, "not a valid accessory name"),
    ({"files": {"image": "minio/minio", "backup": {"schedule": "daily"}}}, "allow_stop"),
])
def test_bad_accessory_settings_say_what_to_write(bad: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        config(bad)
    assert needle in str(info.value)


def test_an_accessory_and_a_process_cannot_share_a_name() -> None:
    with pytest.raises(ValidationError, match="both a process and an accessory"):
        config({"worker": {"image": "redis:7"}}, processes={"worker": ["run"]})


def test_names_on_the_server_are_prefixed_with_the_app(tmp_path: Path) -> None:
    cfg = config({"db": {"image": "postgres:16", "port": "15432:5432"},
                  "cache": {"image": "redis:7", "port": 6379},
                  "files": {"image": "minio/minio",
                            "volumes": ["blobs:/data", "/srv/shop:/srv:ro"]}})
    db, cache, files = (resolve(cfg, n, tmp_path) for n in ("db", "cache", "files"))
    assert db.container == "shop-db" and db.network == "shop"
    assert [m.arg for m in db.mounts()] == ["shop-db-data:/var/lib/postgresql/data"]
    assert [m.arg for m in cache.mounts()] == ["shop-cache-data:/data"]
    assert [m.arg for m in files.mounts()] == ["shop-blobs:/data", "/srv/shop:/srv:ro"]
    assert db.publish() == "127.0.0.1:15432:5432"
    assert cache.publish() == "127.0.0.1:6379:6379"
    assert files.publish() is None
    assert db.backup_dir == "/var/lib/dockyard/backups/shop/db"
    assert [a.name for a in resolve_all(cfg, tmp_path)] == ["cache", "db", "files"]
    with pytest.raises(DockyardError) as info:
        resolve(cfg, "dbb", tmp_path)
    assert info.value.code == "DY060" and "cache, db, files" in info.value.message


def test_an_accessory_gets_exactly_the_secrets_it_lists(tmp_path: Path) -> None:
    cfg = config({"db": {"image": "postgres:16", "env": {"POSTGRES_USER": "shop"},
                         "secrets": ["POSTGRES_PASSWORD"]}})
    db = resolve(cfg, "db", tmp_path)
    server = {"POSTGRES_PASSWORD": "pw-1234", "STRIPE_KEY": "sk-secret"}
    assert db.env(server) == {"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": "pw-1234"}
    with pytest.raises(DockyardError) as info:
        db.env({"STRIPE_KEY": "sk-secret"})
    assert info.value.code == "DY062"
    assert "dockyard env set POSTGRES_PASSWORD -" in info.value.message
    # a changed secret changes the hash (the container is out of date), but never shows in it
    digest = db.config_hash(server)
    assert digest != db.config_hash({**server, "POSTGRES_PASSWORD": "other"})
    assert "pw-1234" not in digest


def test_the_run_command_never_carries_a_secret_and_publishes_on_loopback(
        tmp_path: Path) -> None:
    (tmp_path / "redis.conf").write_text("maxmemory 64mb\n")
    cfg = config({"cache": {"image": "redis:7", "port": "6379", "secrets": ["REDIS_PW"],
                            "files": ["redis.conf:/etc/redis.conf"],
                            "cmd": "redis-server /etc/redis.conf"}})
    cache = resolve(cfg, "cache", tmp_path)
    argv = cmds.run(cache, cache.config_hash({"REDIS_PW": "hunter22"})).argv
    assert "hunter22" not in " ".join(argv)
    assert "--network-alias=cache" in argv
    assert "--label=dockyard.accessory=cache" in argv and "--label=dockyard.app=shop" in argv
    assert not any("dockyard.process" in a for a in argv)
    assert "--publish=127.0.0.1:6379:6379" in argv
    assert ("--volume=/var/lib/dockyard/apps/shop/accessories/cache/files/0-redis.conf:"
            "/etc/redis.conf:ro") in argv
    assert list(argv[-4:]) == ["--", "redis:7", "redis-server", "/etc/redis.conf"]
    assert "--init" in argv and "--restart=unless-stopped" in argv


def test_missing_or_large_files_are_config_errors(tmp_path: Path) -> None:
    cfg = config({"cache": {"image": "redis:7", "files": ["nope.conf:/etc/redis.conf"]}})
    with pytest.raises(DockyardError, match="does not exist"):
        resolve(cfg, "cache", tmp_path).read_uploads()
    (tmp_path / "big").write_bytes(b"x" * (1024 * 1024 + 1))
    cfg = config({"cache": {"image": "redis:7", "files": ["big:/etc/big"]}})
    with pytest.raises(DockyardError, match="larger than 1 MiB"):
        resolve(cfg, "cache", tmp_path).read_uploads()


# -- PostgreSQL major versions --------------------------------------------------------------

def test_major_versions_are_read_from_tags_and_version_text() -> None:
    assert flows.tag_major("postgres:16") == 16
    assert flows.tag_major("postgres:16.2-alpine") == 16
    assert flows.tag_major("registry:5000/postgres:15-bookworm") == 15
    assert flows.tag_major("postgres") is None
    assert flows.tag_major("postgres:latest") is None
    assert flows.major_of("15\n") == 15
    assert flows.major_of("postgres (PostgreSQL) 15.10 (Debian 15.10-0+deb12u1)") == 15
    assert flows.major_of("postgres (PostgreSQL) 9.6.24") == 9


def test_a_postgres_major_version_jump_is_refused_with_the_way_forward() -> None:
    flows.refuse_major_change("db", 16, 16, "postgres:16.1", "postgres:16.4")  # minor: fine
    flows.refuse_major_change("db", None, 17, "postgres", "postgres:17")  # unknown: checked later
    with pytest.raises(DockyardError) as info:
        flows.refuse_major_change("db", 15, 16, "postgres:15", "postgres:16")
    err = info.value
    assert err.code == "DY063"
    assert "PostgreSQL 15 data" in err.message and "cannot open it" in err.message
    assert "nothing was changed" in err.message
    assert err.details and "dockyard backup db" in err.details[0]
    assert "--from-file" in err.details[0]


# -- backups --------------------------------------------------------------------------------

def test_backup_listing_is_parsed_oldest_first() -> None:
    text = ("20261128T101500Z-scheduled.pgdump 3804 " + "a" * 64 + "\n"
            "20261127T031500Z-manual.pgdump 100 " + "b" * 64 + "\n"
            "cron.log 12 -\n"
            "20261128T101501Z-pre-restore.pgdump 1828 " + "c" * 64 + "\n")
    found = backups.parse_list(text)
    assert [b.id for b in found] == ["20261127T031500Z-manual", "20261128T101500Z-scheduled",
                                     "20261128T101501Z-pre-restore"]
    assert found[0].time == "2026-11-27T03:15:00Z" and found[0].why == "manual"
    assert found[0].size == 100 and found[0].sha256 == "b" * 64
    assert found[2].why == "pre-restore"


def test_backup_files_are_recognised_by_their_first_bytes() -> None:
    assert backups.detect_kind(b"PGDMP\x01\x0e") == "postgres"
    assert backups.detect_kind(b"REDIS0010\xfa") == "redis"
    tar = bytearray(512)
    tar[257:262] = b"ustar"
    assert backups.detect_kind(bytes(tar)) == "volume"
    assert backups.detect_kind(b"-- PostgreSQL database dump") is None


def test_backup_commands(tmp_path: Path) -> None:
    cfg = config({"db": {"image": "postgres:16"},
                  "files": {"image": "minio/minio", "volumes": ["blobs:/data"]}})
    db, files = resolve(cfg, "db", tmp_path), resolve(cfg, "files", tmp_path)
    take = backups.take(db, "manual", "busybox:1.36")
    assert take.argv[:2] == ("sh", scripts.path("backup"))
    assert "pg_dump -Fc" in scripts.source("backup")
    assert take.argv[2:] == ("shop", "db", "postgres", "shop-db", "manual", "0", "busybox:1.36")
    tar = backups.take(files, "manual", "busybox:1.36")
    assert tar.argv[-1:] == ("--volume=shop-blobs:/backup/0",)
    assert "while it is stopped" in tar.why
    restore = backups.restore(db, backups.parse_list(
        "20261128T101500Z-manual.pgdump 1 " + "a" * 64)[0], "busybox:1.36")
    assert restore.argv[6:8] == ("/var/lib/dockyard/backups/shop/db",
                                 "20261128T101500Z-manual.pgdump")
    assert "pg_restore --clean --if-exists --single-transaction" in scripts.source("restore")


def test_the_crontab_runs_the_same_backup_script_with_keep(tmp_path: Path) -> None:
    cfg = config({"db": {"image": "postgres:16", "backup": {"schedule": "daily", "keep": 3}},
                  "cache": {"image": "redis:7"}})
    accs = resolve_all(cfg, tmp_path)
    tab = cron.crontab(accs, "busybox:1.36")
    lines = [line for line in tab.splitlines() if not line.startswith("#")]
    assert lines == ["0 3 * * * sh /var/lib/dockyard/apps/shop/cron/scheduled.sh db shop db "
                     "postgres shop-db scheduled 3 busybox:1.36"]
    assert "%" not in tab  # cron would turn % into a newline
    files = cron.files("shop", accs, "busybox:1.36")
    assert files["cron/backup.sh"] == scripts.source("backup").encode()  # the same script
    assert cron.wanted(accs) and not cron.wanted([a for a in accs if a.name == "cache"])
    run = cron.run("shop", "busybox:1.36", "abc").argv
    assert "--volume=/var/run/docker.sock:/var/run/docker.sock" in run
    assert "--network=bridge" in run  # [notify] webhook
    assert "--label=dockyard.role=cron" in run
    assert cron.config_hash("shop", accs, "busybox:1.36") != cron.config_hash("shop", accs,
                                                                    "docker:cli")


def test_ready_checks_per_type(tmp_path: Path) -> None:
    cfg = config({"db": {"image": "postgres:16"}, "cache": {"image": "redis:7"},
                  "x": {"image": "minio/minio"}})
    db, cache, x = (resolve(cfg, n, tmp_path) for n in ("db", "cache", "x"))
    assert "pg_isready" in cmds.wait_ready(db).why
    assert "redis-cli ping" in cmds.wait_ready(cache).why
    assert "HEALTHCHECK" in cmds.wait_ready(x).why
    assert not cmds.wait_ready(db).changes  # a query: runs under --dry-run too
