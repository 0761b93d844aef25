"""Anfu's one settings module. Every deployment difference comes from the
environment; see README.md ("Configuration") for the variables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url

from config.env import DevSecrets, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ANFU_VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")

DEBUG = env_bool("DEBUG", default=False)

# --- secrets ---------------------------------------------------------------
# Development values exist so `make run` works on a fresh machine; with DEBUG
# off, any of them still in use stops the process (DevSecrets.refuse_unless).
_dev = DevSecrets()
SECRET_KEY = _dev.get(
    "DJANGO_SECRET_KEY", "dev-insecure-secret-key-do-not-use-in-production-000000"
)
# Fernet key for django-encrypted-model-fields; several, comma separated,
# during a rotation (the first encrypts, all decrypt).
FIELD_ENCRYPTION_KEY = _dev.get(
    "FIELD_ENCRYPTION_KEY", "mAv2Yq8oQ3cGkX2E3n5o8pYlS0m1vJ9wQ4b7Zr6tUaE="
)
# Keyed HMAC for blind indexes over encrypted PII (lookups, duplicate checks).
BLIND_INDEX_KEY = _dev.get("BLIND_INDEX_KEY", "dev-insecure-blind-index-key")
# Pepper for payment-password hashes (DESIGN.md §4).
PAYMENT_PIN_PEPPER = _dev.get("PAYMENT_PIN_PEPPER", "dev-insecure-payment-pin-pepper")
_dev.refuse_unless(DEBUG)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# --- apps ------------------------------------------------------------------
INSTALLED_APPS = [
    "apps.accounts.apps.OTPAdminConfig",  # django.contrib.admin, OTP required
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "encrypted_model_fields",
    "apps.core",
    "apps.audit",
    "apps.accounts",
    "apps.terminals",
    "apps.transactions",
    "apps.risk",
    "apps.backups",
    "apps.portal",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestIdMiddleware",
    # Outside everything that can answer an /api/v1/terminal/ request (rate
    # limits, 404s, errors), so every such answer is signed.
    "apps.terminals.middleware.TerminalResponseSigningMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.SecurityHeadersMiddleware",
    # A view that raised because the database, Redis or the broker is down
    # answers 503 (apps/core/dependencies.py), with DEBUG on too.
    "apps.core.dependencies.DependencyFailureMiddleware",
    "apps.core.ratelimit.RateLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "apps.core.middleware.SessionIdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.accounts.tenancy.CurrentMerchantMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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
                "apps.portal.context_processors.portal",
            ],
        },
    },
]

# --- data ------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'anfu.sqlite3'}") or ""
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE: a writing transaction takes the write lock up front, so
        # two writers queue instead of failing with "database is locked".
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env_bool("DB_SERVER_SIDE_BINDING", default=False):
        DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = True
USING_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "") or ""
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "anfu") or "anfu",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- auth ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# --- i18n ------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"  # display and business hours; storage is UTC
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = VAR_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Hashed, compressed names in production (collectstatic runs in the
        # image build); plain files in development and tests.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_MANIFEST", default=not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = True

# --- security --------------------------------------------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 60 * 60  # absolute limit; idle limit below
SESSION_IDLE_SECONDS = env_int("SESSION_IDLE_SECONDS", 15 * 60)
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Per client IP, per bucket: (requests, window seconds).
RATE_LIMITS = {
    "login": (env_int("RATE_LIMIT_LOGIN", 20), 60),
    "api": (env_int("RATE_LIMIT_API", 600), 60),
}
RATE_LIMIT_ENABLED = env_bool("RATE_LIMIT_ENABLED", default=True)

# --- API -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apps.core.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Anfu API",
    "DESCRIPTION": "Terminal and wallet API of Anfu. Terminal requests and all responses are signed (RFC 9421).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Celery ----------------------------------------------------------------
# No broker configured: tasks run in-process (eager) and `manage.py serve`
# runs the beat schedule on a thread (apps.core.scheduler).
CELERY_BROKER_URL = REDIS_URL or None
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Periodic jobs; the later apps add theirs through config/celery.py's
# schedule (one place, so the schedule is reviewable at a glance).
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Beat → broker → worker, end to end (apps/core/heartbeats.py).
    "core-heartbeat": {
        "task": "apps.core.tasks.heartbeat",
        "schedule": timedelta(seconds=env_int("SCHEDULED_HEARTBEAT_SECONDS", 60)),
    },
}
# The worker's and beat's own heartbeats (threads of their main processes).
# A heartbeat older than twice its interval plus a minute is stale: /healthz,
# the admin dashboard and the log say so (apps/core/heartbeats.py).
WORKER_HEARTBEAT_SECONDS = env_int("WORKER_HEARTBEAT_SECONDS", 30)
BEAT_HEARTBEAT_SECONDS = env_int("BEAT_HEARTBEAT_SECONDS", 30)

# A request refused because the database, Redis or the broker is down
# answers 503 with this Retry-After (seconds).
SERVICE_UNAVAILABLE_RETRY_AFTER = env_int("SERVICE_UNAVAILABLE_RETRY_AFTER", 5)

# /healthz also reports these, each a function(now) -> {"ok": bool | None, ...}
# of an app above core (core imports none of them).
HEALTHZ_REPORTS = {"backup": "apps.backups.selectors.backup_health"}

# --- email -----------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "anfu@localhost")
COMPLIANCE_EMAILS = env_list("COMPLIANCE_EMAILS", [])

# --- logging ---------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "apps.core.logging.RequestIdFilter"},
        "dependency_failure": {"()": "apps.core.dependencies.DependencyFailureLogFilter"},
    },
    "formatters": {"json": {"()": "apps.core.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # A request refused because a dependency is down is logged once, by
        # apps.core.dependencies, without Django's traceback of it.
        "django.request": {"filters": ["dependency_failure"]},
        "django.server": {"level": "INFO"},
    },
}

# --- terminals (apps.terminals) ----------------------------------------------
# The server's keys for the terminal API (DESIGN.md §5, docs/terminal-api.md):
# base64 of raw 32-byte private keys (Ed25519 for signing responses, X25519
# for the sealed-box secrets terminals send). Comma separated while rotating:
# the first is current (signs / is encrypted to); the others stay published
# and accepted for the grace period. Key ids derive from the public keys.
TERMINAL_SIGNING_KEYS = [
    k.strip()
    for k in _dev.get(
        "TERMINAL_SIGNING_KEYS", "p4JrJSGVA5hPsI1uB8ibTdDtgj3T3C/FrVyZLxNRdF4="
    ).split(",")
    if k.strip()
]
TERMINAL_ENCRYPTION_KEYS = [
    k.strip()
    for k in _dev.get(
        "TERMINAL_ENCRYPTION_KEYS", "5ikNnExBJqfLc6ke6YA4fKOGKa8KZXzoMNeQHALmYh4="
    ).split(",")
    if k.strip()
]
_dev.refuse_unless(DEBUG)
# A signature's `created` may differ from the server clock by at most this.
TERMINAL_CLOCK_SKEW_SECONDS = env_int("TERMINAL_CLOCK_SKEW_SECONDS", 300)
TERMINAL_ACTIVATION_CODE_TTL_SECONDS = env_int("TERMINAL_ACTIVATION_CODE_TTL_SECONDS", 15 * 60)
# After a terminal key rotation the previous key keeps working this long.
TERMINAL_KEY_GRACE_SECONDS = env_int("TERMINAL_KEY_GRACE_SECONDS", 24 * 60 * 60)
# This many signature failures or replays from one terminal within the window
# suspend it (and raise a critical security event).
TERMINAL_FAILURE_BURST_LIMIT = env_int("TERMINAL_FAILURE_BURST_LIMIT", 20)
TERMINAL_FAILURE_BURST_WINDOW = env_int("TERMINAL_FAILURE_BURST_WINDOW", 300)
# Signed requests per terminal per minute.
TERMINAL_RATE_LIMIT = env_int("TERMINAL_RATE_LIMIT", 600)
CELERY_BEAT_SCHEDULE["terminals-nonce-cleanup"] = {
    "task": "apps.terminals.tasks.terminal_nonces_prune",
    "schedule": timedelta(minutes=10),
}

# --- accounts (KYC/KYB, OTP, the three passwords) ------------------------------
# A comma-separated FIELD_ENCRYPTION_KEY lists the keys of a rotation (the
# first encrypts, all decrypt); the library wants a list for that.
if "," in FIELD_ENCRYPTION_KEY:
    FIELD_ENCRYPTION_KEY = [k.strip() for k in FIELD_ENCRYPTION_KEY.split(",") if k.strip()]  # type: ignore[assignment]
AUTHENTICATION_BACKENDS = ["apps.accounts.backends.LockoutModelBackend"]
LOGIN_LOCKOUT_ATTEMPTS = env_int("LOGIN_LOCKOUT_ATTEMPTS", 10)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 30 * 60)
PAYMENT_PASSWORD_MAX_ATTEMPTS = env_int("PAYMENT_PASSWORD_MAX_ATTEMPTS", 5)
PAYMENT_PASSWORD_LOCK_SECONDS = env_int("PAYMENT_PASSWORD_LOCK_SECONDS", 24 * 60 * 60)
OPERATOR_PIN_MAX_ATTEMPTS = env_int("OPERATOR_PIN_MAX_ATTEMPTS", 5)
OPERATOR_PIN_LOCK_SECONDS = env_int("OPERATOR_PIN_LOCK_SECONDS", 30 * 60)
OTP_STEP_UP_SECONDS = env_int("OTP_STEP_UP_SECONDS", 5 * 60)
OTP_TOTP_ISSUER = "Anfu 安付"
KYC_DOCUMENT_MAX_BYTES = env_int("KYC_DOCUMENT_MAX_BYTES", 5 * 1024 * 1024)
KYC_VALIDITY_DAYS = env_int("KYC_VALIDITY_DAYS", 2 * 365)
WALLET_TOKEN_SECONDS = env_int("WALLET_TOKEN_SECONDS", 30 * 24 * 60 * 60)
STAFF_INVITATION_SECONDS = env_int("STAFF_INVITATION_SECONDS", 7 * 24 * 60 * 60)
CELERY_BEAT_SCHEDULE["accounts-kyc-expire"] = {
    "task": "apps.accounts.tasks.kyc_expire_due",
    "schedule": timedelta(hours=1),
}

# --- backups (apps.backups) ------------------------------------------------
# age public keys the backups are encrypted to (comma separated). Public, not
# secret; compliance can add more in the admin. The matching identities stay
# offline; only restore and drill hosts set BACKUP_AGE_IDENTITY(_FILE).
BACKUP_AGE_RECIPIENTS = env_list("BACKUP_AGE_RECIPIENTS", [])
BACKUP_AGE_IDENTITY = env_str("BACKUP_AGE_IDENTITY", "") or ""
BACKUP_AGE_IDENTITY_FILE = env_str("BACKUP_AGE_IDENTITY_FILE", "") or ""
# Targets from the environment, e.g. "file:///srv/backups,s3://bucket/anfu/?endpoint=http://minio:9000"
# (S3 keys from BACKUP_S3_ACCESS_KEY_ID / BACKUP_S3_SECRET_ACCESS_KEY, never from a URL).
BACKUP_TARGETS = env_list("BACKUP_TARGETS", [])
if not BACKUP_TARGETS:
    # compose.yaml's variables: a mounted directory and the MinIO bucket.
    if env_str("BACKUP_FS_PATH"):
        BACKUP_TARGETS.append(f"file://{env_str('BACKUP_FS_PATH')}?name=local")
    if env_str("BACKUP_S3_BUCKET"):
        BACKUP_TARGETS.append(
            f"s3://{env_str('BACKUP_S3_BUCKET')}/?name=s3&endpoint={env_str('BACKUP_S3_ENDPOINT_URL', '')}"
        )
BACKUP_SPOOL_DIR = Path(
    env_str("BACKUP_SPOOL_DIR", str(VAR_DIR / "backup-spool")) or VAR_DIR / "backup-spool"
)
BACKUP_ZSTD_LEVEL = env_int("BACKUP_ZSTD_LEVEL", 3)
BACKUP_SCRATCH_DB_PREFIX = env_str("BACKUP_SCRATCH_DB_PREFIX", "anfu_drill_") or "anfu_drill_"
BACKUP_PG_BIN_DIR = env_str("BACKUP_PG_BIN_DIR", "") or ""
BACKUP_RUN_TIMEOUT_HOURS = env_int("BACKUP_RUN_TIMEOUT_HOURS", 6)
CELERY_BEAT_SCHEDULE.update(
    {
        # The schedule itself lives in BackupPolicy (editable by compliance);
        # the tick only asks whether a backup or a drill is due.
        "backups-tick": {
            "task": "apps.backups.tasks.backup_tick",
            "schedule": timedelta(minutes=10),
        },
        "backups-staleness": {
            "task": "apps.backups.tasks.backup_staleness_check",
            "schedule": timedelta(hours=1),
        },
    }
)

# --- risk (apps.risk) ------------------------------------------------------
# Held payments return to the payer when nobody decided within this time.
RISK_HOLD_EXPIRY_HOURS = env_int("RISK_HOLD_EXPIRY_HOURS", 72)
# At or above this amount (fen) a held payment needs two different approvers.
RISK_SECOND_APPROVER_AMOUNT = env_int("RISK_SECOND_APPROVER_AMOUNT", 5_000_000)
# A reviewer's lock on a case lasts this long.
RISK_CASE_LOCK_MINUTES = env_int("RISK_CASE_LOCK_MINUTES", 15)
# Velocity counters (Redis): connect/read timeout; on timeout velocity rules hold.
RISK_REDIS_TIMEOUT_MS = env_int("RISK_REDIS_TIMEOUT_MS", 100)
# A balance swing between two monitor runs is "sudden" above this many times
# the account's typical change and above RISK_SWING_MIN_AMOUNT (fen).
RISK_SWING_FACTOR = env_int("RISK_SWING_FACTOR", 20)
RISK_SWING_MIN_AMOUNT = env_int("RISK_SWING_MIN_AMOUNT", 10_000_000)
CELERY_BEAT_SCHEDULE.update(
    {
        "risk-balance-monitor": {
            "task": "apps.transactions.tasks.ledger_balance_monitor",
            "schedule": timedelta(minutes=5),
        },
        "risk-monitors-monitor": {
            "task": "apps.risk.tasks.risk_monitors_monitor",
            "schedule": timedelta(minutes=5),
        },
        "risk-holds-expire": {
            "task": "apps.risk.tasks.risk_holds_expire",
            "schedule": timedelta(minutes=5),
        },
        # Payments' detectors: every decided payment, seconds after commit.
        "risk-payment-detectors": {
            "task": "apps.risk.tasks.risk_payment_detectors",
            "schedule": timedelta(seconds=10),
        },
        "risk-detectors-sweep": {
            "task": "apps.risk.tasks.risk_detectors_sweep",
            "schedule": timedelta(minutes=15),
        },
        "risk-counters-prune": {
            "task": "apps.risk.tasks.risk_counters_prune",
            "schedule": timedelta(hours=1),
        },
    }
)

# --- transactions (apps.transactions) ------------------------------------------
# Payment codes expired for a day only ever fail to consume; prune them.
CELERY_BEAT_SCHEDULE["transactions-payment-codes-purge"] = {
    "task": "apps.transactions.tasks.payment_codes_purge",
    "schedule": timedelta(hours=6),
}
# Idempotency-Key answers of the terminal API are kept this long (≥ 7 days:
# terminals can be offline for days), then purged.
IDEMPOTENCY_KEEP_DAYS = env_int("IDEMPOTENCY_KEEP_DAYS", 8)
CELERY_BEAT_SCHEDULE["transactions-idempotency-purge"] = {
    "task": "apps.transactions.tasks.idempotency_records_purge",
    "schedule": timedelta(hours=6),
}
