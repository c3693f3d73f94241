"""Chatsite settings: every knob comes from the environment (see .env.example)."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def required(name: str, value: str) -> str:
    """Fail at start with a message naming the missing setting."""
    if not value:
        raise ImproperlyConfigured(
            f"The environment variable {name} is required (see .env.example and README)."
        )
    return value


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "insecure-development-only-key-set-SECRET_KEY-in-production"
SECRET_KEY = required("SECRET_KEY", SECRET_KEY)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_tasks_db",  # background tasks in the database: `manage.py db_worker`
    "django_htmx",
    "axes",  # login throttling: lockout by username + IP
    "accounts",
    "conversations",
    "review",
    "billing",
    "ops",
    "batches",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "ops.middleware.RequestIdMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "ops.middleware.UserIdMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into its page
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

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
                "chatsite.context_processors.site",
                "django.template.context_processors.csp",
            ],
        },
    },
]

# Database: SQLite file by default, Postgres (with a psycopg pool) from DATABASE_URL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_POOL", default=True
):
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=20),
    }
# The chat's batches of statements (chatsite.db.run_together) run as statements prepared on
# each connection: off behind a pooler in transaction mode (PgBouncer's), where the next
# transaction may get another server connection.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
# Threads that run the chat's ORM calls (chatsite.db.orm): a pool on Postgres, so that one
# turn's round trips do not queue behind another's; 1 on SQLite: Channels' one database
# thread, as every other database call (one writer at a time).
ORM_THREADS = env.int(
    "ORM_THREADS",
    default=8 if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" else 1,
)
if ORM_THREADS > 1 and DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("ORM_THREADS above 1 needs Postgres (SQLite has one writer).")
_pool = DATABASES["default"].get("OPTIONS", {}).get("pool")
if _pool and _pool["max_size"] <= ORM_THREADS:
    raise ImproperlyConfigured("ORM_THREADS must be below DATABASE_POOL_MAX_SIZE.")
del _pool
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Background tasks (Django's tasks framework) stored in the database, run by `db_worker`.
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}

# Redis: channel layer + cache when REDIS_URL is set; in-memory otherwise.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "chatsite.layers.SweepingInMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "accounts.User"
# Sessions in the database, read through the cache (Redis, or this one process's memory:
# without REDIS_URL the site is one process). Every chat socket opened loads its session:
# from the cache that is a lookup instead of a query (the user's row is still read each
# time, so a deactivated account or a changed password takes effect at once). Code that
# deletes session rows must drop them from the cache too (accounts.data.end_sessions).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "conversation_list"
LOGOUT_REDIRECT_URL = "login"
SIGNUP_ENABLED = env.bool("SIGNUP_ENABLED", default=True)

# Security (see README "Security"). CSP: no inline script or style, nonces where needed.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],  # the nonce: pygal's <style> in the spend charts
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],  # CSP3: 'self' also allows ws:/wss: to this host
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses locked-out logins before any check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("LOGIN_THROTTLE_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "chatsite.ratelimit.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Reverse proxies in front that append to X-Forwarded-For (compose's nginx: 1); 0 = none.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Rate limits of costly or guessable views (`limits` notation; empty = no limit).
RATE_LIMIT_LOGIN = env.str("RATE_LIMIT_LOGIN", default="20/minute")  # per client IP
RATE_LIMIT_SIGNUP = env.str("RATE_LIMIT_SIGNUP", default="10/hour")  # per client IP
RATE_LIMIT_COSTLY = env.str("RATE_LIMIT_COSTLY", default="60/minute")  # per user, each view
# Message content older than this many days is blanked daily (0 or empty: keep forever).
CHAT_RETENTION_DAYS = int(env.str("CHAT_RETENTION_DAYS", default="0") or "0")

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
STATIC_MANIFEST = env.bool("STATIC_MANIFEST", default=not DEBUG)
if not STATIC_MANIFEST:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
WHITENOISE_USE_FINDERS = not STATIC_MANIFEST

MAILERS = {
    "default": {
        "BACKEND": env.str(
            "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
        )
    }
}
# EMAIL_URL (django-environ's form, e.g. smtp+tls://user:password@mail.example.com:587)
# names an SMTP server; read into a lower-case name so the URL, which holds a password, is
# not a setting (a debug page lists settings; OPTIONS' "password" is masked there).
if _email_url := env.str("EMAIL_URL", default=""):
    _email = environ.Env.email_url_config(_email_url)
    MAILERS["default"] = {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": {
            name: value
            for name, value in {
                "host": _email["EMAIL_HOST"],
                "port": _email["EMAIL_PORT"],
                "username": _email["EMAIL_HOST_USER"],
                "password": _email["EMAIL_HOST_PASSWORD"],
                "use_tls": _email.get("EMAIL_USE_TLS"),
                "use_ssl": _email.get("EMAIL_USE_SSL"),
                "timeout": env.int("EMAIL_TIMEOUT", default=10),
            }.items()
            if value not in (None, "")
        },
    }
    del _email
del _email_url

# Claude. No key: demo mode, served by the built-in fake Anthropic API in-process.
ANTHROPIC_API_KEY = env.str("ANTHROPIC_API_KEY", default="")
ANTHROPIC_BASE_URL = env.str("ANTHROPIC_BASE_URL", default="")
DEMO_MODE = not ANTHROPIC_API_KEY
CLAUDE_MODEL = env.str("CLAUDE_MODEL", default="claude-sonnet-4-6")
CLAUDE_MAX_TOKENS = env.int("CLAUDE_MAX_TOKENS", default=2048)
TITLE_MODEL = env.str("TITLE_MODEL", default="claude-haiku-4-5")  # writes auto titles
DOCUMENT_MAX_BYTES = env.int("DOCUMENT_MAX_BYTES", default=200_000)
CLAUDE_TIMEOUT = env.float("CLAUDE_TIMEOUT", default=60.0)
# The SDK's HTTP transport: "aiohttp" (its `DefaultAioHttpClient`) or "httpx" (its default).
CLAUDE_HTTP_CLIENT = env.str("CLAUDE_HTTP_CLIENT", default="aiohttp")
if CLAUDE_HTTP_CLIENT not in ("aiohttp", "httpx"):
    raise ImproperlyConfigured('CLAUDE_HTTP_CLIENT must be "aiohttp" or "httpx".')
CLAUDE_MAX_RETRIES = env.int("CLAUDE_MAX_RETRIES", default=2)
# Our own retries (the SDK's are off): exponential backoff with jitter, retry-after honoured.
CLAUDE_RETRY_BASE_DELAY = env.float("CLAUDE_RETRY_BASE_DELAY", default=0.5)
CLAUDE_RETRY_MAX_DELAY = env.float("CLAUDE_RETRY_MAX_DELAY", default=8.0)
CLAUDE_RETRY_AFTER_MAX = env.float("CLAUDE_RETRY_AFTER_MAX", default=20.0)
CLAUDE_FALLBACK_MODEL = env.str("CLAUDE_FALLBACK_MODEL", default="")
# Circuit breaker shared through the cache: open after N outage-like failures in the window.
CLAUDE_BREAKER_THRESHOLD = env.int("CLAUDE_BREAKER_THRESHOLD", default=5)
CLAUDE_BREAKER_WINDOW = env.int("CLAUDE_BREAKER_WINDOW", default=60)
CLAUDE_BREAKER_COOLDOWN = env.int("CLAUDE_BREAKER_COOLDOWN", default=30)
# Limits checked before any call.
CLAUDE_MAX_CONCURRENT_CALLS = env.int("CLAUDE_MAX_CONCURRENT_CALLS", default=500)
RATE_LIMIT_USER_REQUESTS = env.str("RATE_LIMIT_USER_REQUESTS", default="30/minute")
RATE_LIMIT_USER_TOKENS = env.str("RATE_LIMIT_USER_TOKENS", default="400000/minute")
RATE_LIMIT_GLOBAL_REQUESTS = env.str("RATE_LIMIT_GLOBAL_REQUESTS", default="3000/minute")
RATE_LIMIT_GLOBAL_TOKENS = env.str("RATE_LIMIT_GLOBAL_TOKENS", default="20000000/minute")
# Budgets in USD per UTC month; 0 or empty = unlimited. Per-user overrides: the admin.
BUDGET_USER_MONTHLY_USD = Decimal(env.str("BUDGET_USER_MONTHLY_USD", default="0") or "0")
BUDGET_GLOBAL_MONTHLY_USD = Decimal(env.str("BUDGET_GLOBAL_MONTHLY_USD", default="0") or "0")
# How often the worker gives back holds whose call never settled (billing.upkeep); 0: never.
BUDGET_RELEASE_STALE_MINUTES = env.int("BUDGET_RELEASE_STALE_MINUTES", default=60)
# Pacing of the demo model (the in-process fake API) when no key is set.
DEMO_TTFT = env.float("DEMO_TTFT", default=0.4)
DEMO_TOKENS_PER_SECOND = env.float("DEMO_TOKENS_PER_SECOND", default=40.0)
# Frames per second per streaming reply sent to browsers (deltas are coalesced).
STREAM_FRAMES_PER_SECOND = env.float("STREAM_FRAMES_PER_SECOND", default=20.0)
MESSAGE_MAX_CHARS = env.int("MESSAGE_MAX_CHARS", default=50_000)
# The conversation manager: prompt token budget per conversation (admins can change it per
# conversation) and the share of it the context is trimmed to when full, in one step.
CONTEXT_TOKEN_BUDGET = env.int("CONTEXT_TOKEN_BUDGET", default=100_000)
CONTEXT_TRIM_TARGET = env.float("CONTEXT_TRIM_TARGET", default=0.55)
# Batch jobs (batches/): a file of prompts sent through Message Batches or "now"; the
# `db_worker` submits, polls (backing off from MIN to MAX seconds) and stores results.
BATCH_MAX_UPLOAD_BYTES = env.int("BATCH_MAX_UPLOAD_BYTES", default=20_000_000)
BATCH_MAX_ROWS = env.int("BATCH_MAX_ROWS", default=50_000)
BATCH_SPLIT_SIZE = env.int("BATCH_SPLIT_SIZE", default=10_000)  # requests per Message Batch
BATCH_NOW_MAX_ROWS = env.int("BATCH_NOW_MAX_ROWS", default=200)
BATCH_NOW_CONCURRENCY = env.int("BATCH_NOW_CONCURRENCY", default=4)
BATCH_POLL_MIN_SECONDS = env.float("BATCH_POLL_MIN_SECONDS", default=5.0)
BATCH_POLL_MAX_SECONDS = env.float("BATCH_POLL_MAX_SECONDS", default=300.0)
BATCH_LEASE_SECONDS = env.float("BATCH_LEASE_SECONDS", default=30.0)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# json: one JSON object per line on stdout (production); console: readable lines (DEBUG).
LOG_FORMAT = env.str("LOG_FORMAT", default="console" if DEBUG else "json")
if LOG_FORMAT not in ("json", "console"):
    raise ImproperlyConfigured("LOG_FORMAT must be json or console.")
LOGGING = {  # structlog through stdlib logging, keys redacted: see ops/logs.py
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "ops.logs.RedactSecretsFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "json": {"()": "ops.logs.json_formatter"},
        "console": {"()": "ops.logs.console_formatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["redact"],
        },
        "mail_admins": {
            "class": "ops.logs.RedactingAdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["mail_admins"], "level": LOG_LEVEL},  # printed once, by root
        "httpx2": {"level": "WARNING"},
        "anthropic": {"level": "WARNING"},
    },
}

# Operations: /metrics, the error-rate alert to ADMINS (see ops/).
ADMINS = env.list("ADMINS", default=[])  # e-mail addresses
SERVER_EMAIL = env.str("SERVER_EMAIL", default="chatsite@localhost")
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")  # bearer token for /metrics scrapers
ALERT_ERROR_RATE = env.float("ALERT_ERROR_RATE", default=0.5)  # 0 turns the alert off
ALERT_WINDOW_SECONDS = env.int("ALERT_WINDOW_SECONDS", default=300)
ALERT_MIN_CALLS = env.int("ALERT_MIN_CALLS", default=10)

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
CSRF_COOKIE_HTTPONLY = True  # htmx sends the token from the page, never from the cookie
