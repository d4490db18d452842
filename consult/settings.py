"""Settings, read from the environment.

Every default lets `make run` work with nothing configured: SQLite under var/, the in-memory
channel layer, private files on local disk. Production sets the variables listed in README.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import dj_database_url
import django_stubs_ext
from botocore.config import Config as BotoConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from whitenoise.compress import Compressor

from consult.logs import logging_config

# Lets admin and form classes be subscripted for mypy (ModelAdmin[Case]) at run time too.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
# With DEBUG off the project refuses the parts that work on one machine only (SQLite, the in-memory
# channel layer and cache, files on local disk, the folder job queue; see the end of the storage
# settings) unless this says there is only one machine.
SINGLE_MACHINE = env_bool("SINGLE_MACHINE", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production-0123456789abcdef"  # noqa: S105

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "consult",
    "medical",
    "legal",
    "realtime",
    "jobs",
    "accounts",
    "notices",
    "privacy",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "simple_history",
    "staff",
    "django_prometheus",
]

MIDDLEWARE = [
    # First: every answer (redirects and errors too) and every log line carries the request id.
    "consult.logs.RequestIdMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Staff sessions reach nothing but the second-factor pages until the code is given.
    "django_otp.middleware.OTPMiddleware",
    "staff.middleware.SecondFactorMiddleware",
    # Who made an admin edit, for the models' history (staff/models.py).
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy, Permissions-Policy, no-store (consult/headers.py). They read the
    # request's cookies and headers only (no session store, no user): the 500 page needs neither.
    "consult.headers.ContentSecurityPolicyMiddleware",
    "consult.headers.PrivateResponseMiddleware",
    # A lost database or Redis answers 503 in the request's language (after LocaleMiddleware).
    "consult.outage.OutageMiddleware",
    # Last: turns a locked-out password log-in into accounts/lockout.py's answer.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "consult.urls"
ASGI_APPLICATION = "consult.asgi.application"
WSGI_APPLICATION = "consult.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "consult.context_processors.platform",
                "consult.display.display",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    VAR_DIR.mkdir(exist_ok=True)
# A database server keeps each process's connections open (DB_CONN_MAX_AGE seconds) and checks one
# before reusing it after a request or a socket frame, so a restarted server costs one failed check,
# not a new connection per frame (195 ms a message instead of 65 under load). Or, with DB_POOL_SIZE,
# each process keeps a psycopg pool of at most that many connections, shared by its threads (Django
# then wants DB_CONN_MAX_AGE=0: a connection goes back to the pool after each request or call).
# Behind PgBouncer in transaction mode (DB_PGBOUNCER=true) the bouncer pools: no pool here, no
# persistent connection, no server-side cursor (a cursor, like a prepared statement, lives in a
# server session, which the bouncer hands to another client after each transaction).
DB_PGBOUNCER = env_bool("DB_PGBOUNCER", False)
DB_POOL_SIZE = env_int("DB_POOL_SIZE", 0)
_conn_max_age_default = 60 if DATABASE_URL and not DB_PGBOUNCER and not DB_POOL_SIZE else 0
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", _conn_max_age_default),
        conn_health_checks=True,
    )
}
_postgresql = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if DB_POOL_SIZE < 0:
    raise ImproperlyConfigured("DB_POOL_SIZE must be 0 (no pool) or more")
if DB_PGBOUNCER:
    if DB_POOL_SIZE or DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured(
            "DB_PGBOUNCER is on: set DB_POOL_SIZE=0 and DB_CONN_MAX_AGE=0 (PgBouncer pools the connections)"
        )
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if DB_POOL_SIZE:
    if not _postgresql:
        raise ImproperlyConfigured("DB_POOL_SIZE needs PostgreSQL (DATABASE_URL=postgres://...)")
    if DATABASES["default"]["CONN_MAX_AGE"]:
        raise ImproperlyConfigured("DB_POOL_SIZE is set: DB_CONN_MAX_AGE must be 0 (the pool keeps the connections)")
    _pool_min = env_int("DB_POOL_MIN_SIZE", min(2, DB_POOL_SIZE))
    if not 0 <= _pool_min <= DB_POOL_SIZE:
        raise ImproperlyConfigured("DB_POOL_MIN_SIZE must be between 0 and DB_POOL_SIZE")
    # psycopg_pool's ConnectionPool arguments; Django adds the check of a connection before it is
    # handed out (CONN_HEALTH_CHECKS), so one a restarted server or pg_terminate_backend killed is
    # replaced, not used. A thread that finds the pool empty waits DB_POOL_TIMEOUT seconds, then
    # gets an OperationalError (the outage page's 503).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": _pool_min,
        "max_size": DB_POOL_SIZE,
        "timeout": env_int("DB_POOL_TIMEOUT", 10),
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so two writers queue up
    # instead of one failing with "database is locked" halfway through.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so servers the tests start in subprocesses (daphne) see the same data
    # (they are given its path); one per test process, so parallel runs never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "consult.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
# The account's name in staff's authenticator apps.
OTP_TOTP_ISSUER = "Township Consultation"
LOGOUT_REDIRECT_URL = "home"

# Proxies in front of daphne whose X-Forwarded-For entries are trusted (consult/net.py): 0 = none,
# the client is the socket's address. Their X-Forwarded-Proto is trusted only then (see below).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0)
if TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("TRUSTED_PROXIES must be 0 or more")

# Password log-ins (web, admin, API) guarded by django-axes: a phone and a client address that fail
# LOGIN_FAILURE_LIMIT times are refused until LOGIN_LOCKOUT_MINUTES pass (accounts/lockout.py).
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 30)
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_CALLABLE = "accounts.lockout.username"
AXES_CLIENT_IP_CALLABLE = "accounts.lockout.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "accounts.passwords.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REDIS_URL = env_str("REDIS_URL")
# Redis behind Sentinel: the sentinels say which server is the master, and after a failover every
# client (channel layer, cache, Celery broker, the sockets' limits) asks them again. REDIS_URL then
# gives only the database number and the master's password (redis://:password@mymaster/0: its host
# is not used); unset, database 0 and no password.
REDIS_SENTINELS: list[tuple[str, int]] = []
for _sentinel in env_list("REDIS_SENTINELS", []):
    _host, _colon, _port = _sentinel.rpartition(":")
    if not _host or not _port.isdigit():
        raise ImproperlyConfigured(f"REDIS_SENTINELS is a list of host:port, not {_sentinel!r}")
    REDIS_SENTINELS.append((_host.strip("[]"), int(_port)))
REDIS_SENTINEL_MASTER = env_str("REDIS_SENTINEL_MASTER", "mymaster")
REDIS_SENTINEL_PASSWORD = env_str("REDIS_SENTINEL_PASSWORD")
REDIS_CONFIGURED = bool(REDIS_URL or REDIS_SENTINELS)
# Timeouts that fit each other: connecting gives up after REDIS_CONNECT_TIMEOUT, a command after
# REDIS_SOCKET_TIMEOUT (the pub/sub layer never blocks on the server, so an idle subscriber never
# reaches it); an idle pooled connection is PINGed before reuse after REDIS_HEALTH_CHECK seconds, so
# a connection a restarted Redis dropped is replaced instead of failing the next command. A Redis
# host that is lost (a dead machine, not a stopped server) answers nothing, not even a refusal: the
# kernel ends the connection when its keepalive probes (after 5 idle seconds, every 2 s, 3 unanswered)
# or something sent (a health check's PING) go unanswered for about 10 s, so an idle subscriber
# reconnects (through the sentinels, to the new master) and its sockets resync. Linux's defaults
# would keep it waiting, deaf, for 15 minutes to two hours (tests/realtime/test_lost_redis_host.py).
REDIS_KEEPALIVE_OPTIONS = {
    socket.TCP_KEEPIDLE: 5,
    socket.TCP_KEEPINTVL: 2,
    socket.TCP_KEEPCNT: 3,
    socket.TCP_USER_TIMEOUT: 10_000,  # milliseconds
}
REDIS_OPTIONS = {
    "socket_connect_timeout": env_int("REDIS_CONNECT_TIMEOUT", 2),
    "socket_timeout": env_int("REDIS_SOCKET_TIMEOUT", 5),
    "socket_keepalive": True,
    "socket_keepalive_options": REDIS_KEEPALIVE_OPTIONS,
    "health_check_interval": env_int("REDIS_HEALTH_CHECK", 15),
    "retry_on_timeout": True,
}
# The sentinels themselves are asked with the same timeouts (redis-py would give them none).
REDIS_SENTINEL_KWARGS: dict[str, object] = {
    "socket_connect_timeout": REDIS_OPTIONS["socket_connect_timeout"],
    "socket_timeout": REDIS_OPTIONS["socket_timeout"],
}
if REDIS_SENTINEL_PASSWORD:
    REDIS_SENTINEL_KWARGS["password"] = REDIS_SENTINEL_PASSWORD
# A sentinel that does not answer is skipped at once for the next one: redis-py would try it 10 more
# times (its default retry), over 20 s with a lost sentinel host, for every new connection.
# (Retry objects differ for asyncio clients and the others: each client adds its own.)
REDIS_SENTINEL_RETRIES = 0
_redis_url = urlsplit(REDIS_URL or f"redis://{REDIS_SENTINEL_MASTER}/0")
REDIS_DB = int(_redis_url.path.strip("/") or 0)
REDIS_PASSWORD = unquote(_redis_url.password) if _redis_url.password else None
if REDIS_SENTINELS:
    _layer_host: dict[str, object] = {
        # channels_redis builds a SentinelConnectionPool from these keys (channels_redis.utils.create_pool).
        "sentinels": REDIS_SENTINELS,
        "master_name": REDIS_SENTINEL_MASTER,
        "sentinel_kwargs": {**REDIS_SENTINEL_KWARGS, "retry": AsyncRetry(NoBackoff(), REDIS_SENTINEL_RETRIES)},
        "db": REDIS_DB,
        "password": REDIS_PASSWORD,
        **REDIS_OPTIONS,
    }
else:
    _layer_host = {"address": REDIS_URL, **REDIS_OPTIONS}
if REDIS_CONFIGURED:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis's pub/sub layer, telling consumers when Redis comes back (realtime/layers.py).
            "BACKEND": "realtime.layers.ResyncingPubSubChannelLayer",
            "CONFIG": {
                "hosts": [_layer_host],
                "prefix": env_str("CHANNELS_PREFIX", "consult"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Caches: throttles and the tracking rate limit must count across daphne processes, so with
# Redis configured they live there; the public figures are cached there too. Behind Sentinel it is
# still Django's RedisCache, on a pool that asks the sentinels for the master (consult/sentinel.py).
if REDIS_CONFIGURED:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL or _redis_url.geturl(),
            "KEY_PREFIX": env_str("CHANNELS_PREFIX", "consult"),
            "OPTIONS": {
                **REDIS_OPTIONS,
                **({"pool_class": "consult.sentinel.SentinelPool"} if REDIS_SENTINELS else {}),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Background jobs (Celery; jobs/base.py). The broker is Redis when REDIS_URL is set (or any broker
# named by CELERY_BROKER_URL). Without one, it is a folder on this machine (kombu's filesystem
# transport): no server to run, and the daphne, worker and beat processes of `make run` share it.
# The folder is named after the database, because queued jobs carry that database's row ids: the
# servers the tests start against a test database never feed `make run`'s worker, nor it theirs.
if REDIS_SENTINELS:
    # kombu's Sentinel transport: one sentinel:// address per sentinel, each with the master's
    # password and database; the master's name is a transport option (below).
    _auth = f":{quote(REDIS_PASSWORD, safe='')}@" if REDIS_PASSWORD else ""
    _broker_default = ";".join(f"sentinel://{_auth}{host}:{port}/{REDIS_DB}" for host, port in REDIS_SENTINELS)
else:
    _broker_default = REDIS_URL or "filesystem://"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", _broker_default)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / Path(str(DATABASES["default"]["NAME"])).stem
    (_queue_dir / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_queue_dir / "control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A job taken by a worker that died (kill -9, a lost machine) is handed out again after this
        # many seconds. Longer than any job runs or waits for its retry (at most 300 s), or a job
        # would run twice; the jobs are idempotent, so a second run would only cost time.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
        "socket_timeout": REDIS_OPTIONS["socket_timeout"],
        "socket_connect_timeout": REDIS_OPTIONS["socket_connect_timeout"],
        "socket_keepalive": True,
        "socket_keepalive_options": REDIS_KEEPALIVE_OPTIONS,
        "health_check_interval": REDIS_OPTIONS["health_check_interval"],
    }
    if CELERY_BROKER_URL.startswith("sentinel://"):
        CELERY_BROKER_TRANSPORT_OPTIONS["master_name"] = REDIS_SENTINEL_MASTER
        CELERY_BROKER_TRANSPORT_OPTIONS["sentinel_kwargs"] = {
            **REDIS_SENTINEL_KWARGS, "retry": Retry(NoBackoff(), REDIS_SENTINEL_RETRIES)
        }
# A broker that is down must not hold a page or a chat message for long: a few quick tries.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = env_int("CELERY_CONCURRENCY", 2)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",  # with DEBUG on only (consult/api/negotiation.py)
    ],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "consult.api.negotiation.ContentNegotiation",
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "consult.api.schema.ConsultAutoSchema",
    "EXCEPTION_HANDLER": "consult.api.errors.handler",
    # DRF's own throttles are not used (consult/api/throttles.py counts in RATE_LIMITS); any that
    # are keyed by address read X-Forwarded-For as consult/net.py does.
    "NUM_PROXIES": TRUSTED_PROXIES,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Township Consultation Service API",
    "DESCRIPTION": "Cases, documents, chat history, professional queues, tracking and public figures.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the project's own static files: a CDN is blank offline and in mainland China.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "CaseKindEnum": "consult.models.Kind",
        "DocumentKindEnum": "consult.models.DocumentKind",
        # The consents and skip=true: a boolean that must be true.
        "TrueEnum": [(True, True)],
    },
}
REST_KNOX = {
    # Tokens are stored hashed; an app's token lasts 30 days from its last use.
    "TOKEN_TTL": timedelta(days=env_int("API_TOKEN_DAYS", 30)),
    "AUTO_REFRESH": True,
    # Renewed at most hourly (knox: every minute): after a restart every app comes back at once,
    # and each renewal was a write in its socket's handshake.
    "MIN_REFRESH_INTERVAL": 3600,
}

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
CELERY_TIMEZONE = TIME_ZONE  # periodic jobs at wall-clock times are local times
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
PRIVATE_FILES_ROOT = Path(env_str("PRIVATE_FILES_ROOT", str(VAR_DIR / "private")))
# S3 (or any S3-compatible store) is switched on by naming a bucket; then it must be complete.
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
DOWNLOAD_URL_SECONDS = env_int("DOWNLOAD_URL_SECONDS", 300)
if DOWNLOAD_URL_SECONDS > 300:
    raise ImproperlyConfigured("DOWNLOAD_URL_SECONDS must be at most 300 (5 minutes)")
# Every S3 call gives up after a few seconds: botocore's defaults (60 s per connect and per read,
# with retries) held a request for 3 minutes on a hung endpoint. A file store that does not answer
# is then reported as down ("try again in a few minutes") instead of a page that never loads.
S3_CONNECT_TIMEOUT = env_int("AWS_S3_CONNECT_TIMEOUT", 3)
S3_READ_TIMEOUT = env_int("AWS_S3_READ_TIMEOUT", 5)
S3_MAX_ATTEMPTS = env_int("AWS_S3_MAX_ATTEMPTS", 2)
if min(S3_CONNECT_TIMEOUT, S3_READ_TIMEOUT, S3_MAX_ATTEMPTS) < 1:
    raise ImproperlyConfigured("AWS_S3_CONNECT_TIMEOUT, AWS_S3_READ_TIMEOUT and AWS_S3_MAX_ATTEMPTS must be at least 1")
# Given as django-storages' client_config, it replaces the client options storages would build:
# the signature version is set here.
S3_CLIENT_CONFIG = BotoConfig(
    signature_version="s3v4",
    connect_timeout=S3_CONNECT_TIMEOUT,
    read_timeout=S3_READ_TIMEOUT,
    # total_max_attempts counts the first try (botocore's max_attempts would not).
    retries={"total_max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
)
if AWS_STORAGE_BUCKET_NAME:
    _s3 = {
        "AWS_S3_REGION_NAME": env_str("AWS_S3_REGION_NAME"),
        "AWS_ACCESS_KEY_ID": env_str("AWS_ACCESS_KEY_ID"),
        "AWS_SECRET_ACCESS_KEY": env_str("AWS_SECRET_ACCESS_KEY"),
    }
    _missing = [name for name, value in _s3.items() if not value]
    if _missing:
        raise ImproperlyConfigured(f"AWS_STORAGE_BUCKET_NAME is set but these are not: {', '.join(_missing)}")
    _default_storage: dict[str, object] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": _s3["AWS_S3_REGION_NAME"],
            "access_key": _s3["AWS_ACCESS_KEY_ID"],
            "secret_key": _s3["AWS_SECRET_ACCESS_KEY"],
            # Private objects: no ACL of our own, the bucket's (private) default applies.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": DOWNLOAD_URL_SECONDS,
            "file_overwrite": False,
            "object_parameters": {"ServerSideEncryption": env_str("AWS_S3_SSE", "AES256")},
            "signature_version": "s3v4",
            "client_config": S3_CLIENT_CONFIG,
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": PRIVATE_FILES_ROOT, "base_url": None},
    }
STORAGES = {
    # Never under STATIC_ROOT or any served path: files leave only through the access check.
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Several machines need shared parts: one database server, one Redis, one file store, one job queue.
# With DEBUG off the parts that live on one machine are refused unless SINGLE_MACHINE says there is
# only one: on N machines chat would not cross processes, each machine would have its own database
# and files, and the hourly orphan sweep of one machine would delete the document rows whose files
# are on another machine's disk (consult/services/documents.py).
if not DEBUG and not SINGLE_MACHINE:
    _one_machine = []
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        _one_machine.append("the SQLite database (set DATABASE_URL to PostgreSQL)")
    if not REDIS_CONFIGURED:
        _one_machine.append("the in-memory channel layer and cache (set REDIS_URL, or REDIS_SENTINELS)")
    if not AWS_STORAGE_BUCKET_NAME:
        _one_machine.append("uploads on this machine's disk (set AWS_STORAGE_BUCKET_NAME and the AWS_S3_* settings)")
    if CELERY_BROKER_URL.startswith("filesystem://"):
        _one_machine.append("the job queue in a local folder (set REDIS_URL or CELERY_BROKER_URL)")
    if _one_machine:
        raise ImproperlyConfigured(
            "DEBUG is off but these work on one machine only: " + "; ".join(_one_machine)
            + ". Or set SINGLE_MACHINE=true if this is the only machine."
        )
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
# Source maps are for a developer's browser tools, never sent to a phone: not worth compressing
# (brotli of the API docs' 6 MB of maps was most of collectstatic's time).
WHITENOISE_SKIP_COMPRESS_EXTENSIONS = [*Compressor.SKIP_COMPRESS_EXTENSIONS, "map"]

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "noreply@consult.local")

# Notices (notices/): SMS through a backend chosen like EMAIL_BACKEND. Short names: console (prints,
# the default for `make run`), locmem (tests), file, aliyun, tencent; or a dotted path. A provider
# sends only templates registered with it, under a registered signature: their codes are
# SMS_TEMPLATE_<KIND> (notices/kinds.py); the app refuses to start when a provider is chosen and its
# keys, signature or a template code are missing (notices/apps.py).
_SMS_BACKENDS = {
    name: f"notices.backends.{name}.SmsBackend" for name in ("console", "locmem", "file", "aliyun", "tencent")
}
_sms_backend = env_str("SMS_BACKEND", "console")
SMS_BACKEND = _SMS_BACKENDS.get(_sms_backend, _sms_backend)
SMS_FILE_PATH = env_str("SMS_FILE_PATH", str(VAR_DIR / "sms"))
SMS_SIGN_NAME = env_str("SMS_SIGN_NAME")
SMS_TEMPLATES = {
    key.removeprefix("SMS_TEMPLATE_").lower(): value
    for key, value in os.environ.items()
    if key.startswith("SMS_TEMPLATE_") and value
}
ALIYUN_SMS_ACCESS_KEY_ID = env_str("ALIYUN_SMS_ACCESS_KEY_ID")
ALIYUN_SMS_ACCESS_KEY_SECRET = env_str("ALIYUN_SMS_ACCESS_KEY_SECRET")
ALIYUN_SMS_ENDPOINT = env_str("ALIYUN_SMS_ENDPOINT", "dysmsapi.aliyuncs.com")
TENCENT_SMS_SECRET_ID = env_str("TENCENT_SMS_SECRET_ID")
TENCENT_SMS_SECRET_KEY = env_str("TENCENT_SMS_SECRET_KEY")
TENCENT_SMS_SDK_APP_ID = env_str("TENCENT_SMS_SDK_APP_ID")
TENCENT_SMS_REGION = env_str("TENCENT_SMS_REGION", "ap-guangzhou")
TENCENT_SMS_ENDPOINT = env_str("TENCENT_SMS_ENDPOINT", "sms.tencentcloudapi.com")
# No SMS but urgent ones from NOTICE_QUIET_START to NOTICE_QUIET_END (local hours, TIME_ZONE): held
# until the end of the quiet hours.
NOTICE_QUIET_START = env_int("NOTICE_QUIET_START", 22)
NOTICE_QUIET_END = env_int("NOTICE_QUIET_END", 7)
# The wait before a failed notice's second try, doubled for each further one.
NOTICE_RETRY_SECONDS = env_int("NOTICE_RETRY_SECONDS", 30)

SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 24 * 14)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
# Everything from this site and nothing inline (consult/headers.py adds the host's ws:// or wss://
# to connect-src for the sockets). img-src data: is for the icons Swagger UI and the admin draw in
# their style sheets.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Only a proxy we were told of may say the request came over https: with none, a client's
    # X-Forwarded-Proto is ignored (it would make a plain-http request "secure").
    if TRUSTED_PROXIES > 0:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Uploads.
UPLOAD_MAX_FILE_BYTES = env_int("UPLOAD_MAX_FILE_BYTES", 20 * 1024 * 1024)
UPLOAD_MAX_FILES_PER_CASE = env_int("UPLOAD_MAX_FILES_PER_CASE", 20)
UPLOAD_MAX_BYTES_PER_CASE = env_int("UPLOAD_MAX_BYTES_PER_CASE", 200 * 1024 * 1024)
UPLOAD_MAX_IMAGE_PIXELS = env_int("UPLOAD_MAX_IMAGE_PIXELS", 50_000_000)
# Each picture is decoded and re-encoded in a child process (consult/decode.py) with this much
# address space at most, and killed after this long: the picture is then refused, nothing else
# waits. A 50-megapixel picture needs about 600 MB and a few seconds.
UPLOAD_DECODE_MEMORY_MB = env_int("UPLOAD_DECODE_MEMORY_MB", 1024)
UPLOAD_DECODE_SECONDS = env_int("UPLOAD_DECODE_SECONDS", 20)
# Voice messages (consult/files.py check_audio, read by FFmpeg within the limits above): at most
# this long. Five minutes of Opus is about 1 MB.
VOICE_MAX_SECONDS = env_int("VOICE_MAX_SECONDS", 300)
# Files are read whole in the upload view; Django's own limit must not cut them first.
DATA_UPLOAD_MAX_NUMBER_FILES = UPLOAD_MAX_FILES_PER_CASE
# Whole request bodies, kept by daphne before the body is read (consult/bodylimit.py): with a
# session or a token, the largest upload the limits above allow; without, a form's worth.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", UPLOAD_MAX_BYTES_PER_CASE + 1024 * 1024)
REQUEST_MAX_BYTES_ANONYMOUS = env_int("REQUEST_MAX_BYTES_ANONYMOUS", 1024 * 1024)
# Malware scan of every upload by ClamAV's daemon: a socket path, or tcp://host:port. Off when empty
# (make run). CLAMAV_REQUIRED refuses uploads (503, nothing kept) while the scanner cannot answer;
# without it an outage is logged and uploads go on unscanned.
CLAMAV_SOCKET = env_str("CLAMAV_SOCKET", "")
CLAMAV_REQUIRED = env_bool("CLAMAV_REQUIRED", False)
CLAMAV_TIMEOUT = env_int("CLAMAV_TIMEOUT", 30)
if CLAMAV_REQUIRED and not CLAMAV_SOCKET:
    raise ImproperlyConfigured("CLAMAV_REQUIRED is on but CLAMAV_SOCKET is empty: say where clamd listens.")

# Rate limits (consult/limits.py), counted in the cache across processes. Per client address:
# log-in tries, sign-ups, tracking lookups (page and API); per user: uploads (page and API, one per
# file) and chat messages over the API; per case reference: wrong tracking lookups, whatever the
# address (guessing a reference's four digits from many addresses).
CHAT_MESSAGES_PER_10S = env_int("CHAT_MESSAGES_PER_10S", 20)
RATE_LIMITS = {
    "login": env_str("THROTTLE_LOGIN", "10/min"),
    "signup": env_str("THROTTLE_SIGNUP", "20/hour"),
    "tracking": env_str("THROTTLE_TRACKING", "20/hour"),
    "tracking_page": env_str("THROTTLE_TRACKING_PAGE", "10/10min"),
    "tracking_reference": env_str("THROTTLE_TRACKING_REFERENCE", "10/day"),
    "uploads": env_str("THROTTLE_UPLOADS", "60/min"),
    "verify_uploads": env_str("THROTTLE_VERIFY_UPLOADS", "20/hour"),
    "messages": env_str("THROTTLE_MESSAGES", f"{CHAT_MESSAGES_PER_10S}/10s"),
}

# Chat: what one person may send in 10 seconds, whatever their sockets and processes (realtime/limits.py):
# messages (CHAT_MESSAGES_PER_10S, the API's count too), and frames of every type (a page sends a few a
# minute: ping, read, typing, hello on reconnect); past either, frames are refused unworked.
CHAT_FRAMES_PER_10S = env_int("CHAT_FRAMES_PER_10S", 60)
# Messages that catch-ups (`hello` after a reconnect or a gap) may send back to one person a minute.
CHAT_REPLAYED_PER_MINUTE = env_int("CHAT_REPLAYED_PER_MINUTE", 1000)
# Database threads (and so connections) of each daphne process for its sockets' work.
REALTIME_DB_THREADS = env_int("REALTIME_DB_THREADS", 2)
# Chat: a participant away from the room gets one e-mail per quiet period, not one per message.
OFFLINE_NOTICE_QUIET_MINUTES = env_int("OFFLINE_NOTICE_QUIET_MINUTES", 30)
# Who is away is checked this many seconds after a message (someone who comes back to the room by
# then is not told), and a process checks at most once in that time for each case and sender: a
# burst of messages costs one check, not one job per message. 0: a check for every message, at once.
OFFLINE_NOTICE_DELAY_SECONDS = env_int("OFFLINE_NOTICE_DELAY_SECONDS", 15)

# Matching and queues.
# Claims ("take the next case") made within this many seconds of each other have their residents
# told by one job (notices.tasks.claim_notify_soon): a lone claim's resident at once.
CLAIM_NOTICE_BATCH_SECONDS = env_int("CLAIM_NOTICE_BATCH_SECONDS", 1)
# An assigned case not accepted within this many minutes goes back to matching (sweep_queues).
ACCEPT_TIMEOUT_MINUTES = env_int("ACCEPT_TIMEOUT_MINUTES", 30)
# How long a resident may undo withdrawing a case (a slip of the finger, a change of mind).
CASE_REOPEN_MINUTES = env_int("CASE_REOPEN_MINUTES", 15)
# How many recent first responses the wait estimate takes the middle of.
WAIT_ESTIMATE_SAMPLE = env_int("WAIT_ESTIMATE_SAMPLE", 20)
# Recent first responses needed before they alone make the estimate (fewer are blended with the
# promised time, so one quick answer does not turn "about 2 days" into "about 1 minute").
WAIT_ESTIMATE_TRUST = env_int("WAIT_ESTIMATE_TRUST", 5)

# Personal information (privacy/). A closed or withdrawn case keeps its personal details this many
# days, then the periodic job anonymises it (privacy/anonymise.py). Three years by default: a
# worker's claim for unpaid wages can reach arbitration up to a year after the job ends (劳动争议调解仲裁法
# art. 27), then courts; a resident may come back about a consultation or its follow-up; PIPL art. 19
# asks for no longer than the purpose needs. A hospital whose online consultations are medical
# records under its own rules (e.g. 15 years for outpatient records) sets a longer period. 0: never.
PRIVACY_RETENTION_DAYS = env_int("PRIVACY_RETENTION_DAYS", 3 * 365)

PLATFORM_NAME = _("Township Consultation Service")

# --- Observability (issue 16): logs, health, metrics, error reports ---------------------------------
# Logs: one JSON object a line (a collector's format) or readable text; with the request id of the
# page, job or socket they belong to (consult/logs.py).
LOG_FORMAT = env_str("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))

# /health/ready (consult/health.py): seconds each dependency has to answer. A balancer probing every
# few seconds needs the answer before its own timeout (nginx's and HAProxy's defaults are longer).
HEALTH_CHECK_SECONDS = env_int("HEALTH_CHECK_SECONDS", 2)
# The balancer probes over plain HTTP on the private network: no redirect to https for these
# (they carry nothing personal). Prometheus scrapes each daphne the same way.
SECURE_REDIRECT_EXEMPT = [r"^health/(live|ready)$", r"^metrics$"]

# /metrics (consult/metrics.py) answers only these client addresses (consult/net.py's rule).
METRICS_ALLOWED_NETWORKS = env_list("METRICS_ALLOWED_NETWORKS", ["127.0.0.0/8", "::1/128"])
try:
    [ipaddress.ip_network(network, strict=False) for network in METRICS_ALLOWED_NETWORKS]
except ValueError as error:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_NETWORKS: {error}") from None
# django-prometheus's own migration gauges are not wanted (a query at every start).
PROMETHEUS_EXPORT_MIGRATIONS = False

# Error reports (consult/sentry.py): off without a DSN; nothing personal is sent with one.
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    from consult.sentry import init as sentry_init

    sentry_init(dsn=SENTRY_DSN, environment=env_str("SENTRY_ENVIRONMENT"), release=env_str("SENTRY_RELEASE"))
