"""Settings for relay-manager: every value comes from the environment (ARCHITECTURE §13)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from relay_project.env import (
    ConfigError,
    env_bool,
    env_database,
    env_float,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("RELAY_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
TESTING = "pytest" in sys.modules

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ConfigError("SECRET_KEY: required when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-secret-key-change-me"

# Fernet keys for secrets at rest (upstream keys, host credentials, user keys), comma-separated:
# the first encrypts, every one decrypts. Rotate by putting a new key first, then running
# `manage.py rotate_secrets`, then dropping the old one (docs/deployment.md).
RELAY_ENCRYPTION_KEY = env_str("RELAY_ENCRYPTION_KEY")
if not RELAY_ENCRYPTION_KEY and not (DEBUG or TESTING):
    raise ConfigError("RELAY_ENCRYPTION_KEY: required when DEBUG is off (a Fernet key)")
# Source of the keyed fingerprints that match a key across runs; set it (to the current key)
# before rotating RELAY_ENCRYPTION_KEY so fingerprints stay stable.
RELAY_FINGERPRINT_KEY = env_str("RELAY_FINGERPRINT_KEY")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if TESTING:
    ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver", "localhost", "127.0.0.1"]
    # PBKDF2's deliberate slowness protects stored passwords, not test users.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Public address of this control plane, used for result-page links printed by the CLI.
RELAY_PUBLIC_URL = env_str("RELAY_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Serving behind HTTPS (docs/deployment.md) -------------------------------------------------
# RELAY_HTTPS=1 when operators reach the pages over HTTPS (directly or through a proxy): secure
# cookies, HSTS and the redirect to https follow from it; each can still be set on its own.
RELAY_HTTPS = env_bool("RELAY_HTTPS", False)
# Trust X-Forwarded-Proto/Host from the reverse proxy in front (only behind one you control).
RELAY_TRUST_PROXY_HEADERS = env_bool("RELAY_TRUST_PROXY_HEADERS", False)
if RELAY_TRUST_PROXY_HEADERS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = RELAY_HTTPS
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", RELAY_HTTPS)
# Probes from the orchestrator speak plain http on the pod address.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if RELAY_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Subdomains and the preload list concern the whole domain, not this service: they stay the
# operator's explicit choice (the two settings above), so the deploy check does not nag.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Largest request body the web process reads (a 10,000-entry run is about 3 MB of JSON).
RELAY_MAX_REQUEST_BYTES = env_int("RELAY_MAX_REQUEST_BYTES", 8 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = RELAY_MAX_REQUEST_BYTES

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served from here: works offline
    "relay_project",
    "hosts",
    "probe",
    "model_packs",
    "batch_import",
    "providers",
    # Last: the apps above may override its commands (providers' qcluster does).
    "django_q",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "relay_project.urls"
WSGI_APPLICATION = "relay_project.wsgi.application"

# Forms render through TEMPLATES, so templates/django/forms/ can override a widget's template
# (select.html: its options inline, not an include each).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
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
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
DEFAULT_SQLITE_URL = f"sqlite:///{VAR_DIR / 'relay.sqlite3'}"
# A request's connection serves the next requests of its thread (checked before its first use
# in each) for RELAY_DB_CONN_MAX_AGE seconds: a new one per request cost ≈ 4 ms of each
# request's time on PostgreSQL, and a server process. The worker's item places keep and close
# theirs themselves (``batch_import.places``).
DATABASES = {
    "default": env_database(
        "DATABASE_URL",
        DEFAULT_SQLITE_URL,
        conn_max_age=env_int("RELAY_DB_CONN_MAX_AGE", 60, minimum=0),
    )
}
# Off behind a connection pooler in transaction mode that does not track prepared statements.
RELAY_PG_PREPARED_STATEMENTS = env_bool("RELAY_PG_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = "relay_project.sqlite"  # Django's, placeholders cached
    # WAL lets readers work beside one writer; IMMEDIATE takes the write lock at BEGIN, so two
    # workers queue on the busy timeout instead of failing later with "database is locked"
    # (a transaction whose first statement writes may take it with that write instead:
    # ``DatabaseWrapper.lock_at_first_write``, the worker's transitions).
    # mmap_size: a connection reads the file's pages in place, where the kernel keeps them,
    # instead of copying each into a cache of its own by a read call, again after each write
    # of another connection (a worker's item places hold one each, tens writing side by side).
    # wal_autocheckpoint: the log is copied into the file every 20,000 pages written (about 80
    # MiB) rather than every 1,000: the pages every transition writes (the run's counters,
    # the items' index pages) are copied once per checkpoint, and a run writes about a hundred
    # pages per item (docs/performance.md). journal_size_limit trims the log back to 64 MiB
    # once a checkpoint has emptied it.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=268435456;"
            " PRAGMA wal_autocheckpoint=20000; PRAGMA journal_size_limit=67108864;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("RELAY_SQLITE_BUSY_TIMEOUT", 30, minimum=1),
    }
    DATABASES["default"]["TEST"] = {"NAME": env_str("RELAY_SQLITE_TEST_NAME") or None}
else:
    # Django's, with the worker's statements by primary key prepared on the server.
    DATABASES["default"]["ENGINE"] = "relay_project.postgresql"
    # One test database per checkout: two clones testing on one server never drop each
    # other's database mid-run.
    _checkout = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:8]
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{_checkout}"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

# --- i18n ---------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Without collectstatic (demo, tests) WhiteNoise serves straight from the app folders; in
# production `collectstatic` writes compressed, content-hashed files that are cached forever.
WHITENOISE_USE_FINDERS = DEBUG or TESTING
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/batch-import/runs"

# --- Pipeline knobs -------------------------------------------------------------------------------
RELAY_CONCURRENCY = env_int("RELAY_CONCURRENCY", 4, minimum=1)
# Items one worker process advances at once, each in a thread: an item mostly waits on the
# network, so threads give items in flight for the memory of one process.
RELAY_ITEMS_PER_WORKER = env_int("RELAY_ITEMS_PER_WORKER", 8, minimum=1)
# How long a worker process's thread may run Python before it offers the GIL to another
# (``sys.setswitchinterval``; Python's default 0.005 s): with tens of items in flight per
# process, handing the GIL over every 5 ms cost CPU for nothing (batch_import/worker_process.py).
RELAY_WORKER_SWITCH_INTERVAL = env_float("RELAY_WORKER_SWITCH_INTERVAL", 0.02, minimum=0.001)
RELAY_UPSTREAM_CONCURRENCY = env_int("RELAY_UPSTREAM_CONCURRENCY", 2, minimum=1)
RELAY_HOST_CONCURRENCY = env_int("RELAY_HOST_CONCURRENCY", 4, minimum=1)
# How long a place in those bounds stays taken by a holder that died (relay_project/limits.py).
RELAY_SLOT_LEASE_SECONDS = env_float("RELAY_SLOT_LEASE_SECONDS", 300.0, minimum=1.0)
RELAY_HTTP_TIMEOUT = env_float("RELAY_HTTP_TIMEOUT", 15.0, minimum=0.1)
RELAY_HTTP_RETRIES = env_int("RELAY_HTTP_RETRIES", 2, minimum=0)
RELAY_PROBE_MAX_MODELS = env_int("RELAY_PROBE_MAX_MODELS", 4, minimum=1)
RELAY_CONFIRM_MAX_RETRIES = env_int("RELAY_CONFIRM_MAX_RETRIES", 5, minimum=0)
RELAY_VALIDATE_MAX_RETRIES = env_int("RELAY_VALIDATE_MAX_RETRIES", 5, minimum=0)
# How long the gateway's model list one item of a validation key read stands for the next
# items of that key in the same worker process (batch_import/stages/validate.py); 0: every
# item reads its own.
RELAY_VALIDATE_LISTING_REUSE = env_float("RELAY_VALIDATE_LISTING_REUSE", 10.0, minimum=0)
# subscription mode: the host user relay-manager makes to validate with when none of the listed
# users is one it made (existing host users get the subscription, but no key of ours).
RELAY_VALIDATION_USER_EMAIL = env_str(
    "RELAY_VALIDATION_USER_EMAIL", "relay-manager-validation@relay-manager.invalid"
)
RELAY_RETRY_BASE_DELAY = env_float("RELAY_RETRY_BASE_DELAY", 2.0, minimum=0)
RELAY_RETRY_MAX_DELAY = env_float("RELAY_RETRY_MAX_DELAY", 60.0, minimum=0)
RELAY_LEASE_TTL = env_int("RELAY_LEASE_TTL", 120, minimum=5)
RELAY_TASK_TIMEOUT = env_int("RELAY_TASK_TIMEOUT", 90, minimum=5)
RELAY_SWEEP_INTERVAL_MINUTES = env_int("RELAY_SWEEP_INTERVAL_MINUTES", 1, minimum=1)
RELAY_ALLOW_INSECURE_UPSTREAMS = env_bool("RELAY_ALLOW_INSECURE_UPSTREAMS", False)
# After the import (providers app): reconcile every N minutes (setup_schedules), providers
# reconciled side by side per run, account checks failed in a row before the health policy
# disables an account on the host.
RELAY_RECONCILE_INTERVAL_MINUTES = env_int("RELAY_RECONCILE_INTERVAL_MINUTES", 60, minimum=1)
RELAY_RECONCILE_CONCURRENCY = env_int("RELAY_RECONCILE_CONCURRENCY", 4, minimum=1)
RELAY_HEALTH_DISABLE_AFTER = env_int("RELAY_HEALTH_DISABLE_AFTER", 3, minimum=1)
# The task a finished import run hands its run_id to (the inventory takes it in from there);
# the pipeline names it here instead of importing the app above it.
RELAY_AFTER_RUN_TASK = env_str("RELAY_AFTER_RUN_TASK", "providers.tasks.after_import_run")
# Model pack folders the API may install by name (POST /api/packs/install {"folder": …}).
RELAY_PACKS_DIR = Path(env_str("RELAY_PACKS_DIR", str(BASE_DIR / "packs")))

if RELAY_TASK_TIMEOUT >= RELAY_LEASE_TTL:
    raise ConfigError(
        f"RELAY_TASK_TIMEOUT: must be below RELAY_LEASE_TTL ({RELAY_LEASE_TTL}s), "
        f"got {RELAY_TASK_TIMEOUT}s"
    )

# --- django-q2 ------------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
Q_CLUSTER = {
    # Clusters sharing one broker and database must share this name (it names the Redis queue).
    "name": env_str("RELAY_Q_NAME", "relay-manager"),
    "workers": RELAY_CONCURRENCY,
    # timeout < retry and timeout < lease TTL: a task is killed before the broker hands it out
    # again and before another worker may claim the item it holds.
    "timeout": RELAY_TASK_TIMEOUT,
    "retry": RELAY_TASK_TIMEOUT + 30,
    "max_attempts": 1,
    "queue_limit": RELAY_CONCURRENCY * 4,
    "catch_up": False,
    "label": "Task queue",
    "poll": 0.5,
    # Successful tasks are not kept: a run's items and events say what each task did. Keeping
    # the last 500 cost the cluster's monitor a locked read of all 500 and a delete per task,
    # and ≈10 MiB of memory in that process. Failed tasks are still kept (admin, Task queue).
    "save_limit": -1,
    # "Enqueued …" on every task is noise in the CLI and the demo; warnings still show.
    "log_level": env_str("RELAY_Q_LOG_LEVEL", "WARNING"),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
if env_bool("RELAY_Q_SYNC", False):
    Q_CLUSTER["sync"] = True

# --- DRF + OpenAPI --------------------------------------------------------------------------------
RELAY_API_MAX_WAIT_SEC = env_int("RELAY_API_MAX_WAIT_SEC", 30, minimum=0)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes "no credentials" a 401, not a 403.
        "relay_project.api.authentication.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # The API requires staff, like the pages: a logged-in non-staff user can do nothing here.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_PARSER_CLASSES": ["relay_project.api.parsers.SafeJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_METADATA_CLASS": "relay_project.api.metadata.ApiMetadata",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "relay_project.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "TITLE": "relay-manager API",
    "DESCRIPTION": (
        "Batch import of OpenAI-compatible upstreams into a sub2api host. Authenticate with "
        "`Authorization: Token <key>` (`manage.py create_api_token USERNAME`) or a session. "
        'Every error is `{"error": {"code", "message"}}`. Lists page with `limit` and '
        "`cursor`; pass back `next_cursor` until it is null."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "relay_project.api.schema.allow_empty_query_values",
        "relay_project.api.schema.document_body_errors",
    ],
    "TAGS": [
        {"name": "batch-import", "description": "Runs, items and event trails (V2)."},
        {"name": "hosts", "description": "The sub2api hosts this control plane manages."},
        {"name": "legacy", "description": "V1 import batches, read-only; use runs instead."},
    ],
    # Stable component names for every enum (the default names hash the choices).
    "ENUM_NAME_OVERRIDES": {
        "RunStateEnum": "batch_import.models.ImportRun.State",
        "RunModeEnum": "batch_import.models.ImportRun.Mode",
        "AccessModeEnum": "batch_import.models.ImportRun.AccessMode",
        "ItemStageEnum": "batch_import.models.ImportRunItem.Stage",
        "ConfirmationStatusEnum": "batch_import.models.ImportRunItem.ConfirmationStatus",
        "AccessStatusEnum": "batch_import.models.ImportRunItem.AccessStatus",
        "MatchedAccountStateEnum": "batch_import.models.ImportRunItem.MatchedAccountState",
        "AccountResolutionEnum": "batch_import.models.ImportRunItem.AccountResolution",
        "EventTypeEnum": "batch_import.models.ImportRunItemEvent.EventType",
        "LegacyBatchStatusEnum": "batch_import.models.LegacyImportBatch.Status",
        "HostAuthTypeEnum": "hosts.models.Host.AuthType",
        "HostStatusEnum": "hosts.models.Host.Status",
        "ErrorCodeEnum": "relay_project.api.errors.ErrorCode",
        "ProviderStateEnum": "providers.models.Provider.State",
        "AccessClosureEnum": "providers.models.Provider.AccessClosure",
        "ProviderAccountStatusEnum": "providers.models.ProviderAccount.Status",
        "ReconcileRunStateEnum": "providers.models.ReconcileRun.State",
        "ReconcileTriggerEnum": "providers.models.ReconcileRun.Trigger",
        "ReconcileResultKindEnum": "providers.models.ReconcileResult.Kind",
    },
}

# --- Logging: secrets never reach a log line ---------------------------------------------------
# RELAY_LOG_FORMAT=json writes one JSON object per line (for a log shipper); every line logged
# while a worker holds an item carries run_id, item_id, stage and attempt.
RELAY_LOG_FORMAT = env_str("RELAY_LOG_FORMAT", "text")
if RELAY_LOG_FORMAT not in ("text", "json"):
    raise ConfigError(f"RELAY_LOG_FORMAT: expected text or json, got {RELAY_LOG_FORMAT!r}")
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "relay_project.logging.RedactSecretsFilter"},
        "context": {"()": "relay_project.logging.LogContextFilter"},
    },
    "formatters": {
        "text": {"()": "relay_project.logging.TextFormatter"},
        "json": {"()": "relay_project.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context", "redact"],
            "formatter": RELAY_LOG_FORMAT,
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # django-q2 logs through the root handler (redacted, same format) at its own level.
        "django-q": {"level": Q_CLUSTER["log_level"]},
    },
}

# A retry due within this many seconds is waited for by the worker holding the item (warm-up
# backoffs); later ones are left to the scheduled sweep.
RELAY_INLINE_RETRY_MAX_DELAY = env_float("RELAY_INLINE_RETRY_MAX_DELAY", 15.0, minimum=0)
if RELAY_INLINE_RETRY_MAX_DELAY >= RELAY_TASK_TIMEOUT:
    raise ConfigError("RELAY_INLINE_RETRY_MAX_DELAY: must be below RELAY_TASK_TIMEOUT")
