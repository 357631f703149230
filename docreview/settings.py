"""Settings for doc-review, read from the environment.

Defaults run on a laptop with nothing installed: SQLite in WAL mode and the
in-memory channel layer (one server process). ``DATABASE_URL`` switches to
PostgreSQL and ``REDIS_URL`` to the channels-redis layer and a Redis cache,
which is what several server processes need.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a number, got {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG or env_bool("DOCREVIEW_DEV", False):
        SECRET_KEY = "dev-insecure-key-do-not-use-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (set DEBUG=1 for local development)."
        )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "channels",
    "csp",
    "realtime",
    "reviews",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "docreview.middleware.RequestBodyLimitMiddleware",
    "docreview.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "docreview.middleware.CSPMiddleware",
]

ROOT_URLCONF = "docreview.urls"
ASGI_APPLICATION = "docreview.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------

SQLITE_PATH = os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3"))
DATABASE_URL = os.environ.get("DATABASE_URL", "")

# Connections are kept (and checked before reuse): every request's sync work
# runs on one long-lived thread (docreview.handler), and the event stream's
# queries on the event loop's small, long-lived executor, so a process holds
# at most a handful of connections, reused instead of opened per request.
CONN_MAX_AGE = env_int("CONN_MAX_AGE", 600)

if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=CONN_MAX_AGE,
                                                  conn_health_checks=True)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": SQLITE_PATH,
            "OPTIONS": {
                # WAL lets readers (the event stream's replay) run beside the
                # writer; IMMEDIATE takes the write lock at BEGIN so concurrent
                # writers queue on the busy timeout instead of failing with
                # "database is locked" when a read lock cannot be upgraded.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            # A file, not memory: end-to-end tests run a real server process
            # against the test database.
            "TEST": {"NAME": os.environ.get("SQLITE_TEST_PATH")
                     or f"{os.environ.get('TMPDIR', '/tmp')}/docreview-test-{os.getpid()}.sqlite3"},
            "CONN_MAX_AGE": CONN_MAX_AGE,
            "CONN_HEALTH_CHECKS": True,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer and cache ------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_GROUP_EXPIRY = env_int("CHANNEL_GROUP_EXPIRY", 86400)

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # One channel per server process receives every event of its
                # documents, so it needs far more room than a per-stream one.
                "capacity": env_int("CHANNEL_CAPACITY", 10000),
                "expiry": 60,
                "group_expiry": CHANNEL_GROUP_EXPIRY,
                "prefix": os.environ.get("CHANNEL_PREFIX", "docreview"),
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CHANNEL_PREFIX", "docreview"),
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {
                "capacity": env_int("CHANNEL_CAPACITY", 10000),
                "group_expiry": CHANNEL_GROUP_EXPIRY,
            },
        }
    }
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth, i18n, static -----------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env_bool("FAST_PASSWORD_HASHER"):
    # The test suite only: hashing with the production work factor would
    # dominate its run time.  Never set this in production.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Serve static files straight from the apps and static/ (no collectstatic step
# needed for `make run`); with collectstatic run, STATIC_ROOT is used as well.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# A request body over this answers 413 (spec: 2 MB).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- REST framework ---------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "docreview.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "reviews.api.pagination.OldestFirstCursorPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "reviews.api.errors.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "docreview.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Atomic across processes (Redis) - see realtime.ratelimit.
    "DEFAULT_THROTTLE_CLASSES": ["realtime.ratelimit.WriteRateThrottle"],
}

# --- Event stream -------------------------------------------------------------

# The one question the stream asks the domain: may this user read this stream
# key, and as which audience?  See realtime.access.
REALTIME_ACCESS_POLICY = "reviews.stream_access.DocumentStreamPolicy"

SSE_RETRY_MS = env_int("SSE_RETRY_MS", 1000)
SSE_REPLAY_LIMIT = env_int("SSE_REPLAY_LIMIT", 100)
SSE_HEARTBEAT_SECONDS = env_float("SSE_HEARTBEAT_SECONDS", 30.0)
SSE_MAX_CONNECTIONS_PER_USER = env_int("SSE_MAX_CONNECTIONS_PER_USER", 5)
SSE_MAX_CONNECTIONS_PER_DOCUMENT = env_int("SSE_MAX_CONNECTIONS_PER_DOCUMENT", 1000)
# A stream whose unsent frames pass this many bytes is closed; its client
# resumes with Last-Event-ID, so nothing is lost and nobody else waits.
SSE_MAX_BUFFER_BYTES = env_int("SSE_MAX_BUFFER_BYTES", 1024 * 1024)
# The kernel send buffer of each stream's socket (SO_SNDBUF; Linux doubles
# it).  Left alone, Linux grows it to tcp_wmem's maximum (4 MB) for a client
# that does not read, and SSE_MAX_BUFFER_BYTES would only start to count after
# that.  0 leaves it to the kernel.
SSE_SEND_BUFFER_BYTES = env_int("SSE_SEND_BUFFER_BYTES", 64 * 1024)
# Stream opens: a granted (token, document) is reused for this long by the
# process that checked it.  Every revocation (membership, visibility, password,
# deactivation, logout, token deleted) evicts it on every process within the
# revocation poll (1 s), as it closes the streams already open.  0: no cache.
SSE_AUTH_CACHE_SECONDS = env_float("SSE_AUTH_CACHE_SECONDS", 10.0)
# The last events of each document with open streams, kept encoded per
# audience in the process, so a reconnect replays from memory.  Older
# Last-Event-IDs read the table.  0: always read the table.
SSE_REPLAY_RING = env_int("SSE_REPLAY_RING", 256)
# ... and, beyond those, the events of the last SSE_REPLAY_RING_SECONDS, up
# to SSE_REPLAY_RING_MAX: what clients missed while a process restarted.
SSE_REPLAY_RING_SECONDS = env_float("SSE_REPLAY_RING_SECONDS", 10.0)
SSE_REPLAY_RING_MAX = env_int("SSE_REPLAY_RING_MAX", 2048)
# sys.setswitchinterval for server processes, in ms (0: Python's 5 ms).
SWITCH_INTERVAL_MS = env_float("SWITCH_INTERVAL_MS", 0.0)
# The collector's young-generation threshold in server processes (Python's
# default is 700; 0 leaves it), set when the hub starts.  See realtime.hub.
GC_GEN0_THRESHOLD = env_int("GC_GEN0_THRESHOLD", 2_000)
# Worker threads (each with its kept connection) for the event stream's reads.
SSE_DB_THREADS = env_int("SSE_DB_THREADS", 4)
# How often each process compares its documents' last sequence numbers with
# the event table, to fill what the channel layer silently dropped.
SSE_RESYNC_SECONDS = env_float("SSE_RESYNC_SECONDS", 5.0)

# Streams are closed after this long (less up to 10% jitter, so clients do not
# all reconnect together) and resume by Last-Event-ID.  0 disables.
SSE_MAX_LIFETIME_SECONDS = env_float("SSE_MAX_LIFETIME_SECONDS", 3600.0)

# Stream leases (connection limits and presence) live this long unless their
# process renews them; a dead process's streams are freed within it.
SSE_LEASE_TTL_SECONDS = env_float("SSE_LEASE_TTL_SECONDS", 30.0)
# A user whose last stream closed is announced offline only if no stream of
# theirs reopened within this (no flicker on reconnect).
SSE_PRESENCE_GRACE_SECONDS = env_float("SSE_PRESENCE_GRACE_SECONDS", 3.0)
SSE_PRESENCE_SWEEP_SECONDS = env_float("SSE_PRESENCE_SWEEP_SECONDS", 5.0)
# Key prefix of everything doc-review keeps in Redis besides the layer.
REALTIME_REDIS_PREFIX = os.environ.get("CHANNEL_PREFIX", "docreview")
# Writes (and typing/cursor) per user: a token bucket shared by all processes.
WRITE_RATE_PER_SECOND = env_float("WRITE_RATE_PER_SECOND", 10.0)
WRITE_RATE_BURST = env_int("WRITE_RATE_BURST", 10)
# POST /api/auth/token/: password attempts per username (any process): a burst
# of 10, then one every 5 seconds.
SIGN_IN_RATE_PER_SECOND = env_float("SIGN_IN_RATE_PER_SECOND", 0.2)
SIGN_IN_RATE_BURST = env_int("SIGN_IN_RATE_BURST", 10)
IDEMPOTENCY_TTL_HOURS = env_int("IDEMPOTENCY_TTL_HOURS", 24)
EVENT_RETENTION_DAYS = env_int("EVENT_RETENTION_DAYS", 30)
EVENT_RETENTION_MAX_PER_DOCUMENT = env_int("EVENT_RETENTION_MAX_PER_DOCUMENT", 100_000)

# While a document is busy (events under 50 ms apart), its events are sent
# to each stream in batches at most this many ms apart: one wake-up and one
# write per stream per batch.  A quiet document's events go out at once.  0
# disables.
SSE_COALESCE_MS = env_float("SSE_COALESCE_MS", 20.0)

METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")

# --- Security headers ---------------------------------------------------------

# Pages load only their own scripts, styles and connections: no inline code.
# The admin is Django's own and uses a few inline styles, so it is excluded.
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/admin/"],
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY") else None

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
