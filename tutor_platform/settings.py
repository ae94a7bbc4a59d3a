"""Settings for the AI tutor platform: one module, driven by the environment.

Every value comes from an environment variable (or `.env`, or the file named
by `ENV_FILE`, e.g. `.env.production`); `.env.example` documents them all.
The defaults are safe: `DEBUG` is off, and with `DEBUG` off the production
security settings are on and a missing or development `SECRET_KEY` refuses to
start.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from aicore import routing as ai_routing
from tutor_platform import serving

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# Variables already in the environment win over the file.
environ.Env.read_env(env.str("ENV_FILE", default=str(BASE_DIR / ".env")))

DEBUG = env.bool("DEBUG", default=False)

# ---------------------------------------------------------------------------
# Secret key: refuse to run in production with a missing or development key.
# ---------------------------------------------------------------------------
DEVELOPMENT_SECRET_KEY = "django-insecure-development-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)


def _is_weak_secret_key(key: str) -> bool:
    # Mirrors Django's own security.W009 rule, plus our development key.
    return (
        key == DEVELOPMENT_SECRET_KEY
        or key.startswith("django-insecure")
        or len(key) < 50
        or len(set(key)) < 5
    )


if not DEBUG and _is_weak_secret_key(SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY is missing or is a development key while DEBUG is False. "
        "Set a random SECRET_KEY of at least 50 characters, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(64))'."
    )

LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1", ".localhost", "testserver"}
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
if DEBUG and set(ALLOWED_HOSTS) - LOCAL_HOSTS:
    raise ImproperlyConfigured(
        "DEBUG=True with a public ALLOWED_HOSTS "
        f"({', '.join(sorted(set(ALLOWED_HOSTS) - LOCAL_HOSTS))}) would show "
        "tracebacks and settings to the world. Set DEBUG=False in production."
    )
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
# Content-Disposition: a browser app names the export's file from it.
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After", "Content-Disposition"]
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
)

# ---------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "tutoring",
    "chats",
    "feedback",
    "progress",
    "aicore",
    "usage",
    "privacy",
    "safety",
    "attachments",
    "tutor_platform",  # its management commands (nginx_config)
]

MIDDLEWARE = [
    "tutor_platform.middleware.RequestIDMiddleware",
    "tutor_platform.serving.cpu_gate.AICoreRequestGateMiddleware",
    "tutor_platform.middleware.BodySizeLimitMiddleware",
    "tutor_platform.middleware.APIErrorPagesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tutor_platform.middleware.StaffLocaleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tutor_platform.urls"
WSGI_APPLICATION = "tutor_platform.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tutor_platform" / "templates"],
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

# ---------------------------------------------------------------------------
# Database: DATABASE_URL, else PostgreSQL from DB_* variables, else SQLite.
# ---------------------------------------------------------------------------
DB_CONN_MAX_AGE = env.int("DB_CONN_MAX_AGE", default=60)
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
elif env.str("DB_NAME", default=""):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": env.str("DB_NAME"),
            "USER": env.str("DB_USER", default="postgres"),
            "PASSWORD": env.str("DB_PASSWORD", default=""),
            "HOST": env.str("DB_HOST", default="127.0.0.1"),
            "PORT": env.str("DB_PORT", default="5432"),
            "OPTIONS": {"sslmode": env.str("DB_SSLMODE", default="prefer")},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
        }
    }
DATABASES["default"]["CONN_MAX_AGE"] = DB_CONN_MAX_AGE
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Prepared statements (off by default): parameters bound by PostgreSQL, and
# a statement run DB_PREPARE_THRESHOLD times on a connection is prepared
# there once and then only executed. bench/ measured 32-58 % less PostgreSQL
# CPU per request one at a time, but a burst of 200 (1 000) concurrent sends
# took 6.9-7.1 s (44-50 s) against 5.1-5.4 s (25-26 s) without. Behind a
# pooler in transaction mode (PgBouncer before 1.21, or without
# max_prepared_statements) a prepared statement may be gone on the next
# transaction's server connection: leave it off there.
DB_PREPARED_STATEMENTS = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DB_PREPARED_STATEMENTS", default=False
)
if DB_PREPARED_STATEMENTS:
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=env.int("DB_PREPARE_THRESHOLD", default=5)
    )

# Connections: never more than the database accepts. An app server runs
# GUNICORN_WORKERS processes for each of GUNICORN_SERVICES (app, ai and
# stream by default, tutor_platform/serving), each serving its service's
# threads at once (the same variables gunicorn.conf.py reads);
# DB_MAX_CONNECTIONS is PostgreSQL's max_connections, less
# DB_RESERVED_CONNECTIONS for migrations, cron jobs, psql and the superuser.
try:
    SERVER_SERVICES = serving.services_run()
    SERVICE = serving.this_service()
except serving.ServingError as error:
    raise ImproperlyConfigured(str(error)) from error
# Each service's threads per process (`app` alone takes the others' too).
SERVER_THREADS = {service.name: serving.threads_for(service, SERVER_SERVICES) for service in SERVER_SERVICES}
SERVICE_THREADS = SERVER_THREADS[SERVICE.name]  # this process's
SERVER_WORKERS = env.int("GUNICORN_WORKERS", default=os.cpu_count() or 1)
SERVER_PROCESSES = SERVER_WORKERS * len(SERVER_SERVICES)
# App servers (hosts) sharing the database, each with this configuration:
# they share its connections too.
APP_SERVERS = env.int("APP_SERVERS", default=1)
if APP_SERVERS < 1:
    raise ImproperlyConfigured("APP_SERVERS must be 1 or more.")
DB_CONNECTION_BUDGET = (
    env.int("DB_MAX_CONNECTIONS", default=100) - env.int("DB_RESERVED_CONNECTIONS", default=10)
) // APP_SERVERS
_postgresql = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DB_POOL = env.bool("DB_POOL", default=_postgresql and not DEBUG)


def _pool_size(service: str) -> int:
    """A process's pool: an equal share of the server's budget, no more than its threads."""
    share = DB_CONNECTION_BUDGET // SERVER_PROCESSES
    return env.int("DB_POOL_MAX_SIZE", default=max(1, min(SERVER_THREADS[service], share)))


if DB_POOL:
    # A bounded psycopg pool per process: a request (or a send waiting on
    # AI-Core, which hands its connection back meanwhile) borrows a
    # connection only while it runs queries; one that finds none free within
    # DB_POOL_TIMEOUT answers 503 `database_unavailable`.
    if not _postgresql:
        raise ImproperlyConfigured("DB_POOL=True needs PostgreSQL.")
    # Django's backend, with a pool that drops all dead connections at once.
    DATABASES["default"]["ENGINE"] = "tutor_platform.db"
    DB_POOL_MAX_SIZE = _pool_size(SERVICE.name)
    # With CONN_HEALTH_CHECKS, Django asks the pool to check each connection
    # before handing it out.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env.int("DB_POOL_MIN_SIZE", default=2), DB_POOL_MAX_SIZE),
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
    _per_service = {name: _pool_size(name) for name in SERVER_THREADS}
else:
    # Without a pool every serving thread may hold a connection of its own.
    _per_service = SERVER_THREADS
DB_CONNECTIONS_AT_MOST = SERVER_WORKERS * sum(_per_service.values())
if _postgresql and not DEBUG and DB_CONNECTIONS_AT_MOST > DB_CONNECTION_BUDGET:
    raise ImproperlyConfigured(
        f"Up to {DB_CONNECTIONS_AT_MOST} database connections ({SERVER_WORKERS} workers x "
        + " + ".join(f"{count} ({name})" for name, count in _per_service.items())
        + f" {'pooled connections' if DB_POOL else 'threads'}) exceed the {DB_CONNECTION_BUDGET} "
        "the database can give this server ((DB_MAX_CONNECTIONS - DB_RESERVED_CONNECTIONS) / APP_SERVERS). "
        + ("Lower DB_POOL_MAX_SIZE or GUNICORN_WORKERS." if DB_POOL else "Use DB_POOL=True (the default).")
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend with LIKE folding Cyrillic case too (search, like PostgreSQL).
    DATABASES["default"]["ENGINE"] = "tutor_platform.sqlite"
    # Tests use an in-memory database, as with Django's own backend (which
    # pytest-django recognises by name only).
    DATABASES["default"].setdefault("TEST", {}).setdefault("NAME", ":memory:")
# Each request commits on its own: the send flow must commit the user message
# before AI-Core is called, so requests are never wrapped in one transaction.
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "tutor_platform.sqlite":
    # Wait for a concurrent writer instead of failing at once.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("timeout", 20)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# A cache each process keeps to itself: the reply being written, the
# throttle counters and the circuit breaker would differ from one worker to
# the next (a re-attached stream answers 204 on half the calls).
PER_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
if not DEBUG and SERVER_PROCESSES > 1 and CACHES["default"]["BACKEND"] in PER_PROCESS_CACHES:
    raise ImproperlyConfigured(
        f"CACHE_URL is a per-process cache ({CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}) with "
        f"{SERVER_PROCESSES} gunicorn processes: each would see its own live replies and throttle counters. "
        "Set CACHE_URL=redis://... (or run one process: GUNICORN_SERVICES=app, GUNICORN_WORKERS=1)."
    )
if CACHES["default"]["BACKEND"] in (
    "django.core.cache.backends.redis.RedisCache",
    "django_redis.cache.RedisCache",
):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # django-redis: one connection pool per server per process, shared by
    # every request thread (tutor_platform/cache.py uses its public client).
    CACHES["default"]["BACKEND"] = "django_redis.cache.RedisCache"
    # A Redis that is down or hanging must cost a request milliseconds, not
    # seconds: short socket timeouts and no retries. Throttles then fail
    # open and health reports the cache as unavailable.
    CACHE_TIMEOUT = env.float("CACHE_TIMEOUT", default=0.25)
    CACHES["default"]["OPTIONS"] = {
        **CACHES["default"].get("OPTIONS", {}),
        "SOCKET_CONNECT_TIMEOUT": CACHE_TIMEOUT,
        "SOCKET_TIMEOUT": CACHE_TIMEOUT,
        # Every thread of a process may use Redis at once (and the heartbeat's
        # thread): redis-py's default of 100 would refuse the rest.
        "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 0), "max_connections": SERVICE_THREADS + 8},
    }

# ---------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailOrUsernameBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "username", "full_name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ---------------------------------------------------------------------------
# Internationalisation, static files
# ---------------------------------------------------------------------------
# The API speaks English and UTC (the contract); the admin speaks the staff's
# language and shows their time zone (StaffLocaleMiddleware).
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "tutor_platform" / "locale"]
# One date format across the admin (lists, pages, the version history, the
# dashboard): tutor_platform/formats/<language>/formats.py.
FORMAT_MODULE_PATH = ["tutor_platform.formats"]
STAFF_LANGUAGE = env.str("STAFF_LANGUAGE", default="ru")
STAFF_TIME_ZONE = env.str("STAFF_TIME_ZONE", default="Europe/Moscow")
# Where the admin's "View site" goes (the students' web app); unset hides the link.
FRONTEND_URL = env.str("FRONTEND_URL", default="")

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploaded files (attachments, exports): never served at MEDIA_URL, only
# through the views that check who asks (attachments/views.py).
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
FILE_STORAGE = env.str("FILE_STORAGE", default="local")
if FILE_STORAGE == "local":
    _default_storage: dict = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif FILE_STORAGE == "s3":
    # S3-compatible object storage (AWS S3, MinIO, Yandex Object Storage):
    # a private bucket; django-storages reads the AWS_* settings below.
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("AWS_S3_REGION_NAME", default="") or None,
            "access_key": env.str("AWS_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("AWS_LOCATION", default=""),
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="") or None,
            "signature_version": "s3v4",
        },
    }
else:
    raise ImproperlyConfigured("FILE_STORAGE must be `local` or `s3`.")
STORAGES = {
    "default": _default_storage,
    # Hashed, compressed files need `collectstatic`; development and tests skip it.
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if env.bool("STATICFILES_MANIFEST", default=not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Tests and `runserver` without collectstatic still find files in the apps.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=DEBUG)
WHITENOISE_MANIFEST_STRICT = False

# Larger JSON bodies get a JSON 413 from BodySizeLimitMiddleware.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
# Requests without a user (login, register, refresh) need little: bound the
# work an anonymous client can make the server do.
ANON_DATA_UPLOAD_MAX_SIZE = env.int("ANON_DATA_UPLOAD_MAX_SIZE", default=16_384)

# ---------------------------------------------------------------------------
# Production security: on whenever DEBUG is off, each overridable.
# ---------------------------------------------------------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("SECURE_PROXY_SSL_HEADER", default=not DEBUG) else None
)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health/$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# ---------------------------------------------------------------------------
# REST framework, JWT, OpenAPI
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.tokens.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["tutor_platform.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "tutor_platform.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": [
        "tutor_platform.throttling.AnonRateThrottle",
        "tutor_platform.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON_RATE", default="60/min"),
        "user": env.str("THROTTLE_USER_RATE", default="600/min"),
        "ai_send": env.str("THROTTLE_AI_RATE", default="30/min"),
        # API and admin logins, per client address and per account.
        # Failed logins per address and account, and per address (a class behind one NAT).
        "login": env.str("THROTTLE_LOGIN_RATE", default="10/min"),
        "login_address": env.str("THROTTLE_LOGIN_ADDRESS_RATE", default="30/min"),
        "export": env.str("THROTTLE_EXPORT_RATE", default="10/hour"),
        # The admin's try-it panel, per editor (each try asks AI-Core twice).
        "try_it": env.str("THROTTLE_TRY_IT_RATE", default="30/hour"),
        "upload": env.str("THROTTLE_UPLOAD_RATE", default="30/hour"),
    },
    # The client address for throttling is the one the last NUM_PROXIES
    # trusted proxies saw; 0 (no proxy) ignores X-Forwarded-For entirely.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
    "DEFAULT_SCHEMA_CLASS": "tutor_platform.schema.AutoSchema",
    "EXCEPTION_HANDLER": "tutor_platform.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# The secret behind the ML team's pseudonymous student keys (tutor_platform.pseudonyms).
# Changing it changes every key, so the ML team's data no longer groups by student.
STUDENT_KEY_SECRET = env.str("STUDENT_KEY_SECRET", default=SECRET_KEY)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", default=SECRET_KEY),
    "AUTH_HEADER_TYPES": ("Bearer",),
    # A password change alters the hash embedded in every token, so access
    # tokens issued before it are rejected.
    "CHECK_REVOKE_TOKEN": True,
    "REVOKE_TOKEN_CLAIM": "hash_password",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "AI tutor platform API",
    "DESCRIPTION": (
        "REST API for the web frontend and the ML team. Authenticate with "
        "`Authorization: Bearer <access token>` from `/api/v1/auth/login/`. "
        'Errors other than validation errors are `{"detail", "code"}`. '
        "Query parameters not listed for an operation are rejected with 400. "
        "Behind the production nginx, what it answers itself (a body over the limit: 413 "
        "`request_too_large`; a request line or headers too large: 414 `uri_too_long`, 400 "
        "`headers_too_large`; the app down: 503 `service_unavailable`) is JSON with a `code` too. "
        "The guide for the frontend is docs/API.md in the repository."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # No BlankEnum/NullEnum beside an enum (`QuickReactionEnum | BlankEnum` is two
    # types to a generated client): nullable says null, and an enum that has
    # an empty value lists it (tutor_platform.schema.ENUMS_WITH_BLANK).
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": False,
    # operationIds without the version prefix: `chats_messages_create`.
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    # One job each (tutor_platform/schema.py); delete_bodies before
    # common_error_responses, which gives operations with a body 413 and 415.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tutor_platform.schema.delete_bodies",
        "tutor_platform.schema.common_error_responses",
        "tutor_platform.schema.integer_path_ids",
        "tutor_platform.schema.error_components",
        "tutor_platform.schema.enums_with_blank",
        "tutor_platform.schema.examples",
        "tutor_platform.schema.responses_always_present",
    ],
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "chats.models.Message.Role",
        "FeedbackTypeEnum": "feedback.models.Feedback.FeedbackType",
        "QuickReactionEnum": "feedback.models.Feedback.QuickReaction",
        "HealthStatusEnum": ["ok", "error"],
        "IntentEnum": "chats.models.Intent",
        "LearnerLevelEnum": "accounts.models.LearnerLevel",
        "LearnerLanguageEnum": "accounts.models.LearnerLanguage",
        "ExperimentStateEnum": "tutoring.models.Experiment.State",
        "ExperimentActionEnum": "tutoring.models.ExperimentEvent.Action",
        "ExperimentArmEnum": ["A", "B", "C", "D"],
    },
}

# ---------------------------------------------------------------------------
# Domain settings
# ---------------------------------------------------------------------------
MESSAGE_MAX_CHARS = env.int("MESSAGE_MAX_CHARS", default=8000)
# The public catalogue is served from the cache and invalidated on every write
# (tutoring/catalogue.py); this bounds an entry's age all the same. 0: no cache.
CATALOGUE_CACHE_SECONDS = env.int("CATALOGUE_CACHE_SECONDS", default=300)
AI_HISTORY_MESSAGES = env.int("AI_HISTORY_MESSAGES", default=20)
# The exchanges the struggle estimate looks back over (chats/replies/learning.py).
AI_STRUGGLE_WINDOW = env.int("AI_STRUGGLE_WINDOW", default=10)
if AI_STRUGGLE_WINDOW < 1:
    raise ImproperlyConfigured("AI_STRUGGLE_WINDOW must be 1 or more.")
# An experiment arm whose failure rate or too_hard + incorrect share exceeds the
# first arm's by this much stops receiving students (tutoring/experiments.py).
EXPERIMENT_GUARDRAIL_MARGIN = env.float("EXPERIMENT_GUARDRAIL_MARGIN", default=0.15)
if not 0 < EXPERIMENT_GUARDRAIL_MARGIN <= 1:
    raise ImproperlyConfigured("EXPERIMENT_GUARDRAIL_MARGIN must be more than 0 and at most 1.")
# Requests that ask AI-Core and run Python at once, per process (tutor_platform/serving/cpu_gate.py).
# One: two in a process never run in parallel (the GIL), and a second one
# only doubled what a catalogue read waits for in a burst.
AI_CPU_SLOTS = env.int("AI_CPU_SLOTS", default=1)
if AI_CPU_SLOTS < 1:
    raise ImproperlyConfigured("AI_CPU_SLOTS must be 1 or more.")
# Replies (sends, replies, regenerations) and tokens per student per UTC day;
# 0 is no limit. Staff can override both for one student in the admin.
AI_DAILY_MESSAGES_PER_USER = env.int("AI_DAILY_MESSAGES_PER_USER", default=0)
AI_DAILY_TOKENS_PER_USER = env.int("AI_DAILY_TOKENS_PER_USER", default=0)
if min(AI_DAILY_MESSAGES_PER_USER, AI_DAILY_TOKENS_PER_USER) < 0:
    raise ImproperlyConfigured(
        "AI_DAILY_MESSAGES_PER_USER and AI_DAILY_TOKENS_PER_USER must be 0 (no limit) or more."
    )

AI_CORE_URL = env.str("AI_CORE_URL", default="stub")
# The stub answers students with canned text: fine for development, never a
# silent production default. A staging box may allow it explicitly.
AI_CORE_ALLOW_STUB = env.bool("AI_CORE_ALLOW_STUB", default=DEBUG)
# Seconds between the stub's words when it streams (to watch a reply appear).
AI_CORE_STUB_CHUNK_DELAY = env.float("AI_CORE_STUB_CHUNK_DELAY", default=0.0)
if AI_CORE_URL == "stub" and not AI_CORE_ALLOW_STUB:
    raise ImproperlyConfigured(
        "AI_CORE_URL is the built-in stub while DEBUG is False: students would get stub answers. "
        "Set AI_CORE_URL to AI-Core's base URL (or AI_CORE_ALLOW_STUB=True on a staging box)."
    )
if AI_CORE_URL != "stub" and not AI_CORE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"AI_CORE_URL must be `stub` or an http(s) base URL, not {AI_CORE_URL!r}.")
# How AI_CORE_URL is spoken to: `aicore` (API_CONTRACT.md) or `openai`
# (chat completions: vLLM, Ollama, llama.cpp's server, OpenAI; aicore/protocols.py).
AI_CORE_PROTOCOL = env.str("AI_CORE_PROTOCOL", default="aicore")
if AI_CORE_PROTOCOL not in ai_routing.PROTOCOL_NAMES:
    raise ImproperlyConfigured(f"AI_CORE_PROTOCOL is one of {', '.join(ai_routing.PROTOCOL_NAMES)}.")
# Model servers besides the default: a version's model_id `<provider>/<model>`
# goes to that provider (aicore/routing.py).
try:
    AI_PROVIDERS = ai_routing.parse_providers(env.str("AI_PROVIDERS", default=""), os.environ)
except ValueError as error:
    raise ImproperlyConfigured(str(error)) from error
AI_CORE_TIMEOUT = env.float("AI_CORE_TIMEOUT", default=60.0)
# A streamed reply: AI_CORE_TIMEOUT between pieces, this for the whole reply.
AI_CORE_STREAM_TIMEOUT = env.float("AI_CORE_STREAM_TIMEOUT", default=300.0)
AI_CORE_CONNECT_TIMEOUT = env.float("AI_CORE_CONNECT_TIMEOUT", default=3.0)
# An answer (JSON or a whole SSE stream) larger than this is cut off while it is read: 502.
AI_CORE_MAX_ANSWER_BYTES = env.int("AI_CORE_MAX_ANSWER_BYTES", default=2 * 1024 * 1024)
AI_CORE_MAX_RETRIES = env.int("AI_CORE_MAX_RETRIES", default=2)
AI_CORE_RETRY_BACKOFF = env.float("AI_CORE_RETRY_BACKOFF", default=0.5)
AI_CORE_API_KEY = env.str("AI_CORE_API_KEY", default="")
AI_CORE_CIRCUIT_FAILURES = env.int("AI_CORE_CIRCUIT_FAILURES", default=5)
AI_CORE_CIRCUIT_RESET_SECONDS = env.float("AI_CORE_CIRCUIT_RESET_SECONDS", default=30.0)
AI_CORE_HEALTH_CACHE_SECONDS = env.int("AI_CORE_HEALTH_CACHE_SECONDS", default=10)
# The models OpenAI-compatible servers list, offered in the admin's model field.
AI_CORE_MODELS_CACHE_SECONDS = env.int("AI_CORE_MODELS_CACHE_SECONDS", default=300)

# Safety (moderation): every student message and every reply is checked by
# each of these (`rules`: the built-in term lists; `openai`: an
# OpenAI-compatible /moderations endpoint; `aicore`: AI-Core's own verdict).
MODERATION_PROVIDERS = env.list("MODERATION_PROVIDERS", default=["rules"])
if unknown := set(MODERATION_PROVIDERS) - {"rules", "openai", "aicore"}:
    raise ImproperlyConfigured(f"MODERATION_PROVIDERS: unknown checks {sorted(unknown)}.")
MODERATION_URL = env.str("MODERATION_URL", default="")
if "openai" in MODERATION_PROVIDERS and not MODERATION_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        "MODERATION_PROVIDERS has `openai`: set MODERATION_URL to its http(s) base URL."
    )
MODERATION_API_KEY = env.str("MODERATION_API_KEY", default="")
MODERATION_MODEL = env.str("MODERATION_MODEL", default="omni-moderation-latest")
MODERATION_TIMEOUT = env.float("MODERATION_TIMEOUT", default=2.0)
# A check that fails: `flag` lets the text through and records it as
# unchecked for review; `block` refuses it (503 moderation_unavailable).
MODERATION_ON_ERROR = env.str("MODERATION_ON_ERROR", default="flag")
if MODERATION_ON_ERROR not in ("flag", "block"):
    raise ImproperlyConfigured("MODERATION_ON_ERROR must be `flag` or `block`.")
# Who is emailed at once when a student's message or a reply is refused or
# answered in self_harm or sexual.
SAFETY_ALERT_EMAILS = env.list("SAFETY_ALERT_EMAILS", default=[])

# Attachments (photos of a problem, worksheets): checked, images re-encoded,
# stored through Django's default storage (STORAGES below), never public.
ATTACHMENT_MAX_BYTES = env.int("ATTACHMENT_MAX_BYTES", default=10 * 1024 * 1024)
ATTACHMENT_MAX_PIXELS = env.int("ATTACHMENT_MAX_PIXELS", default=40_000_000)
ATTACHMENT_MAX_EDGE = env.int("ATTACHMENT_MAX_EDGE", default=2048)
ATTACHMENT_STORAGE_PER_USER = env.int("ATTACHMENT_STORAGE_PER_USER", default=200 * 1024 * 1024)
# How long a signed link to a file works (AI-Core's, the export's, the admin's).
ATTACHMENT_URL_SECONDS = env.int("ATTACHMENT_URL_SECONDS", default=600)
# An upload no message references is deleted by purge_expired after this.
ATTACHMENT_ORPHAN_HOURS = env.int("ATTACHMENT_ORPHAN_HOURS", default=24)
# clamd, to scan every upload before it is stored: tcp://host:3310 or
# unix:///run/clamav/clamd.ctl; empty: no scan.
ATTACHMENT_SCAN_URL = env.str("ATTACHMENT_SCAN_URL", default="")
if ATTACHMENT_SCAN_URL and not ATTACHMENT_SCAN_URL.startswith(("tcp://", "unix://")):
    raise ImproperlyConfigured("ATTACHMENT_SCAN_URL must be tcp://host:port or unix:///path/to/clamd.socket.")
ATTACHMENT_SCAN_TIMEOUT = env.float("ATTACHMENT_SCAN_TIMEOUT", default=30.0)
if min(ATTACHMENT_MAX_BYTES, ATTACHMENT_MAX_PIXELS, ATTACHMENT_MAX_EDGE, ATTACHMENT_URL_SECONDS) < 1:
    raise ImproperlyConfigured(
        "ATTACHMENT_MAX_BYTES, _MAX_PIXELS, _MAX_EDGE and _URL_SECONDS must be positive."
    )
# The backend's own base URL as AI-Core (and a moderation service) reach it:
# the signed links in what they are sent start with it. Unset, they are
# paths (check --deploy warns).
BACKEND_URL = env.str("BACKEND_URL", default="http://localhost:8000" if DEBUG else "").rstrip("/")

# Email (safety alerts): the console in development; e.g.
# EMAIL_URL=smtp+tls://user:password@smtp.example.com:587 in production.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tutor-platform@localhost")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)

# ---------------------------------------------------------------------------
# Logging: one line per record on stdout, each with the request id.
# ---------------------------------------------------------------------------
# LOG_FORMAT: `line` (for people) or `json` (one object per line, for a log shipper).
LOG_FORMAT = env.str("LOG_FORMAT", default="line")
if LOG_FORMAT not in ("line", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be line or json, not {LOG_FORMAT!r}.")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "tutor_platform.logging.RequestIDFilter"}},
    "formatters": {
        "line": {
            "()": "tutor_platform.logging.OneLineFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s",
        },
        "json": {
            "()": "tutor_platform.logging.JSONFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "filters": ["request_id"],
            "formatter": LOG_FORMAT,
        }
    },
    "root": {"handlers": ["stdout"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Our access log replaces these; they would log the raw request line.
        "django.server": {"level": "ERROR"},
        "django.request": {"level": "ERROR"},
    },
}
