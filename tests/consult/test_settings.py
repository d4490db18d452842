"""Settings read from the environment, checked in a fresh process each time (settings load once)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Variables that would leak the outer test run's configuration into the child.
OUTER = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASE_URL", "REDIS_URL",
         "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "DJANGO_SETTINGS_MODULE", "SINGLE_MACHINE")
S3_ENV = {"AWS_STORAGE_BUCKET_NAME": "consult", "AWS_S3_REGION_NAME": "cn-north-1", "AWS_ACCESS_KEY_ID": "id",
          "AWS_SECRET_ACCESS_KEY": "secret"}


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OUTER}
    env.update(
        DJANGO_SETTINGS_MODULE="consult.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        PRIVATE_FILES_ROOT=str(tmp_path / "private"),
    )
    env.update(values)
    return env


def _production(tmp_path: Path, **values: str) -> dict[str, str]:
    production = {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(45),  # 60 characters
        "ALLOWED_HOSTS": "consult.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://consult.example.org",
        # Several machines' shared parts (nothing here connects to them): with DEBUG off the
        # single-machine ones are refused (tests/consult/test_machines.py).
        "DATABASE_URL": "postgres://consult@db.internal:5432/consult",
        "REDIS_URL": "redis://redis.internal:6379/0",
        **S3_ENV,
    }
    return _env(tmp_path, **{**production, **values})


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_it_passes_the_deploy_checks_with_a_production_environment(tmp_path: Path) -> None:
    env = _production(tmp_path)
    assert len(env["SECRET_KEY"]) == 60

    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_it_fails_the_deploy_checks_when_debug_is_left_on(tmp_path: Path) -> None:
    # The check above can fail: the same run with DEBUG on is refused.
    result = _run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production(tmp_path, DEBUG="true"))

    assert result.returncode != 0
    assert "security.W018" in result.stdout + result.stderr


def test_it_refuses_to_start_without_a_secret_key_when_debug_is_off(tmp_path: Path) -> None:
    env = _production(tmp_path)
    del env["SECRET_KEY"]

    result = _run(["manage.py", "check"], env)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_it_refuses_to_start_with_a_debug_value_it_cannot_read(tmp_path: Path) -> None:
    result = _run(["manage.py", "check"], _production(tmp_path, DEBUG="maybe"))

    assert result.returncode != 0
    assert "DEBUG must be true or false" in result.stderr


LAYER = (
    "import django; django.setup(); "
    "from django.conf import settings; from channels.layers import get_channel_layer; "
    "print(settings.CHANNEL_LAYERS['default']['BACKEND']); print(type(get_channel_layer()).__name__); "
    "print(settings.CHANNEL_LAYERS['default'].get('CONFIG', {}).get('hosts'))"
)


def test_it_uses_the_redis_channel_layer_when_redis_url_is_set(tmp_path: Path) -> None:
    # Building the layer does not connect: no Redis server is needed here.
    result = _run(["-c", LAYER], _env(tmp_path, REDIS_URL="redis://redis.internal:6379/3"))

    assert result.returncode == 0, result.stderr
    backend, layer, hosts = result.stdout.splitlines()
    assert backend == "realtime.layers.ResyncingPubSubChannelLayer"
    assert layer == "ResyncingPubSubChannelLayer"
    assert "'address': 'redis://redis.internal:6379/3'" in hosts
    # Connect and command timeouts, and a health check, so a dropped connection is replaced.
    assert "'socket_connect_timeout': 2" in hosts and "'health_check_interval': 15" in hosts


def test_it_uses_the_in_memory_channel_layer_when_redis_url_is_unset(tmp_path: Path) -> None:
    result = _run(["-c", LAYER], _env(tmp_path))

    assert result.returncode == 0, result.stderr
    backend, layer, _hosts = result.stdout.splitlines()
    assert backend == "channels.layers.InMemoryChannelLayer"
    assert layer == "InMemoryChannelLayer"


S3_CLIENT = (
    "import django; django.setup(); from django.conf import settings; "
    "config = settings.STORAGES['default']['OPTIONS']['client_config']; "
    "print(config.connect_timeout, config.read_timeout, config.retries, config.signature_version)"
)


def test_it_gives_s3_calls_timeouts_of_a_few_seconds_by_default(tmp_path: Path) -> None:
    result = _run(["-c", S3_CLIENT], _env(tmp_path, **S3_ENV))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(maxsplit=2) == ["3", "5", "{'total_max_attempts': 2, 'mode': 'standard'} s3v4"]


def test_it_takes_the_s3_timeouts_from_the_environment(tmp_path: Path) -> None:
    env = _env(tmp_path, **S3_ENV, AWS_S3_CONNECT_TIMEOUT="2", AWS_S3_READ_TIMEOUT="9", AWS_S3_MAX_ATTEMPTS="1")

    result = _run(["-c", S3_CLIENT], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().split(maxsplit=2) == ["2", "9", "{'total_max_attempts': 1, 'mode': 'standard'} s3v4"]


def test_it_refuses_to_start_with_an_s3_timeout_of_zero(tmp_path: Path) -> None:
    result = _run(["manage.py", "check"], _env(tmp_path, **S3_ENV, AWS_S3_READ_TIMEOUT="0"))

    assert result.returncode != 0
    assert "AWS_S3_READ_TIMEOUT" in result.stderr
