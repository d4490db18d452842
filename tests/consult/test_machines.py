"""With DEBUG off the settings refuse the parts that work on one machine only (SQLite, the in-memory
channel layer and cache, files on local disk, the folder job queue) unless SINGLE_MACHINE=true says
this is the only machine; the error names what to set. Also the database pool and PgBouncer
switches (DB_POOL_SIZE, DB_PGBOUNCER) and the Redis Sentinel ones (REDIS_SENTINELS). Each case
loads the settings in a fresh process with its environment: nothing here connects anywhere."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.live import run_python

OUTER = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "SINGLE_MACHINE",
    "CELERY_BROKER_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "DB_POOL_SIZE",
    "DB_CONN_MAX_AGE",
    "DB_PGBOUNCER",
    "REDIS_SENTINELS",
    "DJANGO_SETTINGS_MODULE",
    "CONSULT_REQUIRE_SERVICES",
)
POSTGRES = "postgres://consult@db.internal:5432/consult"
REDIS = "redis://redis.internal:6379/0"
S3 = {
    "AWS_STORAGE_BUCKET_NAME": "consult",
    "AWS_S3_REGION_NAME": "cn-north-1",
    "AWS_ACCESS_KEY_ID": "id",
    "AWS_SECRET_ACCESS_KEY": "secret",
}
# The several-machine production set: PostgreSQL, Redis (layer, cache, broker) and S3.
SEVERAL = {"DATABASE_URL": POSTGRES, "REDIS_URL": REDIS, **S3}

SHOW = (
    "import json; from django.conf import settings; db = settings.DATABASES['default']; "
    "print(json.dumps({'engine': db['ENGINE'], 'conn_max_age': db['CONN_MAX_AGE'], "
    "'pool': db['OPTIONS'].get('pool'), 'server_side_cursors_off': db.get('DISABLE_SERVER_SIDE_CURSORS', False), "
    "'layer': settings.CHANNEL_LAYERS['default'], 'cache': settings.CACHES['default'], "
    "'broker': settings.CELERY_BROKER_URL, 'broker_options': settings.CELERY_BROKER_TRANSPORT_OPTIONS, "
    "'storage': settings.STORAGES['default']['BACKEND']}, default=str))"
)


def load(tmp_path: Path, **values: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in OUTER}
    env.update(
        DJANGO_SETTINGS_MODULE="consult.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(45),
        ALLOWED_HOSTS="consult.example.org",
        PRIVATE_FILES_ROOT=str(tmp_path / "private"),
    )
    env.update(values)
    return run_python("import django; django.setup(); " + SHOW, env=env, timeout=120)


def refusal(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr, result.stderr[-2000:]
    return result.stderr.strip().splitlines()[-1]


def shown(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-3000:]
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def without(name: str) -> dict[str, str]:
    return {k: v for k, v in SEVERAL.items() if k != name and not (name == "S3" and k.startswith("AWS_"))}


@pytest.mark.parametrize(
    ("missing", "values", "named"),
    [
        ("SQLite", {**without("DATABASE_URL"), "DATABASE_URL": "sqlite:///{tmp}/db.sqlite3"}, "DATABASE_URL"),
        (
            "in-memory layer and cache",
            without("REDIS_URL") | {"CELERY_BROKER_URL": "redis://redis.internal/1"},
            "REDIS_URL",
        ),
        ("local files", without("S3"), "AWS_STORAGE_BUCKET_NAME"),
        ("folder job queue", {**SEVERAL, "CELERY_BROKER_URL": "filesystem://"}, "CELERY_BROKER_URL"),
    ],
)
def test_it_refuses_each_single_machine_part_with_debug_off(
    tmp_path: Path, missing: str, values: dict[str, str], named: str
) -> None:
    values = {k: v.format(tmp=tmp_path) for k, v in values.items()}

    message = refusal(load(tmp_path, **values))

    assert "one machine only" in message
    assert named in message and "SINGLE_MACHINE=true" in message, message
    # Only what is missing is named.
    assert message.count(";") == 0, message


def test_it_names_every_missing_part_at_once_on_the_embedded_defaults(tmp_path: Path) -> None:
    message = refusal(load(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3"))

    for named in ("DATABASE_URL", "REDIS_URL", "REDIS_SENTINELS", "AWS_STORAGE_BUCKET_NAME", "CELERY_BROKER_URL"):
        assert named in message, message


def test_it_allows_the_single_machine_parts_when_single_machine_says_so(tmp_path: Path) -> None:
    settings = shown(load(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3", SINGLE_MACHINE="true"))

    assert settings["engine"] == "django.db.backends.sqlite3"
    assert settings["layer"] == {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    assert settings["storage"] == "django.core.files.storage.FileSystemStorage"
    assert str(settings["broker"]).startswith("filesystem://")


def test_it_allows_the_production_set_of_postgresql_redis_and_s3(tmp_path: Path) -> None:
    settings = shown(load(tmp_path, **SEVERAL))

    assert settings["engine"] == "django.db.backends.postgresql"
    assert settings["storage"] == "storages.backends.s3.S3Storage"
    assert settings["broker"] == REDIS
    assert settings["conn_max_age"] == 60 and settings["pool"] is None


def test_the_orphan_sweep_never_meets_local_files_on_several_machines(tmp_path: Path) -> None:
    # documents_sweep_orphans deletes a document row whose file its store does not have: with local
    # files on several machines that would be every row whose file is on another machine. Such a
    # process cannot start: local files with DEBUG off need SINGLE_MACHINE=true (one disk, every
    # file on it), or S3 (one store every machine sees).
    message = refusal(load(tmp_path, **without("S3")))
    assert "uploads on this machine's disk" in message

    assert shown(load(tmp_path, **without("S3"), SINGLE_MACHINE="true"))["storage"].endswith("FileSystemStorage")


# --- the database pool and PgBouncer ---------------------------------------------------------


def test_db_pool_size_turns_on_djangos_psycopg_pool_without_persistent_connections(tmp_path: Path) -> None:
    settings = shown(load(tmp_path, **SEVERAL, DB_POOL_SIZE="6"))

    assert settings["pool"] == {"min_size": 2, "max_size": 6, "timeout": 10}
    assert settings["conn_max_age"] == 0


def test_it_refuses_a_pool_with_persistent_connections_or_on_sqlite(tmp_path: Path) -> None:
    assert "DB_CONN_MAX_AGE must be 0" in refusal(load(tmp_path, **SEVERAL, DB_POOL_SIZE="4", DB_CONN_MAX_AGE="60"))
    sqlite = {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "SINGLE_MACHINE": "true"}
    assert "DB_POOL_SIZE needs PostgreSQL" in refusal(load(tmp_path, **sqlite, DB_POOL_SIZE="4"))


def test_behind_pgbouncer_nothing_lives_in_a_server_session(tmp_path: Path) -> None:
    settings = shown(load(tmp_path, **SEVERAL, DB_PGBOUNCER="true"))

    assert settings["conn_max_age"] == 0 and settings["pool"] is None
    assert settings["server_side_cursors_off"] is True
    assert "DB_POOL_SIZE=0" in refusal(load(tmp_path, **SEVERAL, DB_PGBOUNCER="true", DB_POOL_SIZE="4"))
    assert "DB_CONN_MAX_AGE=0" in refusal(load(tmp_path, **SEVERAL, DB_PGBOUNCER="true", DB_CONN_MAX_AGE="60"))


# --- Redis Sentinel ------------------------------------------------------------------------------


def test_redis_sentinels_configure_the_layer_the_cache_and_the_broker(tmp_path: Path) -> None:
    values = {
        **without("REDIS_URL"),
        "REDIS_SENTINELS": "s1.internal:26379,s2.internal:26380",
        "REDIS_SENTINEL_MASTER": "consult",
        "REDIS_SENTINEL_PASSWORD": "watch",
        "REDIS_URL": "redis://:p%40ss@consult/3",
    }

    settings = shown(load(tmp_path, **values))

    host = settings["layer"]["CONFIG"]["hosts"][0]
    assert settings["layer"]["BACKEND"] == "realtime.layers.ResyncingPubSubChannelLayer"
    assert host["master_name"] == "consult" and host["db"] == 3 and host["password"] == "p@ss"
    assert host["sentinels"] == [["s1.internal", 26379], ["s2.internal", 26380]]
    assert host["sentinel_kwargs"]["password"] == "watch" and host["sentinel_kwargs"]["socket_timeout"] == 5
    assert settings["cache"]["OPTIONS"]["pool_class"] == "consult.sentinel.SentinelPool"
    assert settings["broker"] == "sentinel://:p%40ss@s1.internal:26379/3;sentinel://:p%40ss@s2.internal:26380/3"
    assert settings["broker_options"]["master_name"] == "consult"


def test_redis_sentinels_alone_count_as_redis_for_several_machines(tmp_path: Path) -> None:
    settings = shown(load(tmp_path, **without("REDIS_URL"), REDIS_SENTINELS="sentinel.internal:26379"))

    assert settings["layer"]["CONFIG"]["hosts"][0]["db"] == 0
    assert str(settings["broker"]).startswith("sentinel://sentinel.internal:26379/0")
    assert "host:port" in refusal(load(tmp_path, **SEVERAL, REDIS_SENTINELS="sentinel.internal"))
