"""Production settings, read from environment variables (cookiecutter-django style).

Every missing or invalid variable is collected and reported in ONE ImproperlyConfigured error
at import time, so a misconfigured container fails at start with the whole list.

Required: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS (comma-separated), DJANGO_DB_NAME,
          DJANGO_DB_USER, DJANGO_DB_PASSWORD, DJANGO_DB_HOST
Secrets (DJANGO_SECRET_KEY, DJANGO_SECRET_KEY_FALLBACKS, DJANGO_DB_PASSWORD) may instead be
          given as a file: <NAME>_FILE=/run/secrets/... (Docker's convention), never both.
Optional: DJANGO_SECRET_KEY_FALLBACKS (earlier secret keys, whitespace-separated: sessions and
          password-reset links signed with them stay valid after a rotation), DJANGO_DB_PORT (5432), DJANGO_CACHE_TIMEOUT (60 seconds), DJANGO_CACHE_LOCATION (memcached's
          host:port; empty: the database), DJANGO_LOG_LEVEL (INFO),
          DJANGO_SECURE_SSL (false), DJANGO_DB_SSLMODE (libpq's sslmode; RDS: verify-full) and
          DJANGO_DB_SSLROOTCERT (the CA file of verify-ca/verify-full), DJANGO_CSRF_TRUSTED_ORIGINS (comma-separated),
          DJANGO_ADMIN_URL (admin: the admin site's path segment),
          DJANGO_UPLOAD_S3_BUCKET, AWS_S3_REGION_NAME / AWS_DEFAULT_REGION, AWS_S3_ENDPOINT_URL,
          DJANGO_STATIC_ROOT, DJANGO_MEDIA_ROOT (read in common_settings.py)
"""
import importlib.util
import os
import re

from django.core.exceptions import ImproperlyConfigured
from django.utils.crypto import salted_hmac

from .common_settings import *  # noqa: F401,F403
from .common_settings import LOGGING, STORAGES, parse_log_level
from .release import release_digest

_problems = []


def _env(name):
    """The variable's value with surrounding whitespace removed; '' when unset."""
    return os.environ.get(name, "").strip()


def _required(name):
    value = _env(name)
    if not value:
        _problems.append(f"{name} (required, not set)")
    return value


def _secret(name, required=True):
    """A secret: the variable, or the content of the file <name>_FILE names (a Docker secret)."""
    path = _env(f"{name}_FILE")
    if path and _env(name):
        _problems.append(f"{name} and {name}_FILE (set one of them, not both)")
        return ""
    if not path:
        return _required(name) if required else _env(name)
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except OSError as e:
        _problems.append(f"{name}_FILE (cannot read {path}: {e.strerror})")
        return ""
    if not value and required:
        _problems.append(f"{name}_FILE ({path} is empty)")
    return value


def _csv(name):
    """A comma-separated list: items stripped, empty items dropped."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def _int(name, default, minimum=0):
    raw = _env(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        _problems.append(f"{name} (must be a whole number >= {minimum}, got {raw!r})")
        return default
    return value


def _bool(name, default=False):
    raw = _env(name).lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    _problems.append(f"{name} (must be true or false, got {raw!r})")
    return default


# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------
DEBUG = False
SECRET_KEY = _secret("DJANGO_SECRET_KEY")
# earlier keys: what they signed (sessions, password-reset links) is still accepted
SECRET_KEY_FALLBACKS = _secret("DJANGO_SECRET_KEY_FALLBACKS", required=False).split()

ALLOWED_HOSTS = _csv("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    _problems.append("DJANGO_ALLOWED_HOSTS (required: comma-separated host names, none given)")

CSRF_TRUSTED_ORIGINS = _csv("DJANGO_CSRF_TRUSTED_ORIGINS")

# The admin's address: /<DJANGO_ADMIN_URL>/ (the deploy gives each site its own, see
# tasks/lib/remote/settings.ts); "admin" when unset.
ADMIN_URL = _env("DJANGO_ADMIN_URL") or "admin"
if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,63}", ADMIN_URL):
    _problems.append(f"DJANGO_ADMIN_URL (letters, digits and . _ ~ -, one path segment; got {ADMIN_URL!r})")
    ADMIN_URL = "admin"

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _required("DJANGO_DB_NAME"),
        "USER": _required("DJANGO_DB_USER"),
        "PASSWORD": _secret("DJANGO_DB_PASSWORD"),
        "HOST": _required("DJANGO_DB_HOST"),
        "PORT": str(_int("DJANGO_DB_PORT", 5432, minimum=1)),
        # Persistent connections (one per uWSGI thread), checked with a SELECT 1 before a request
        # first uses one. The check costs one round trip per request that uses the database (about
        # 10 % of a logged-in movie page here; nginx's cached pages never reach Django); without
        # it, each thread's first request after a database restart (restore, new db image) fails.
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # Fail fast (e.g. /healthz answers 503) instead of hanging when the host is unreachable.
        "OPTIONS": {"connect_timeout": 5},
    }
}
# TLS to the database (RDS: verify-full against the CA bundle the deploy hands in, so a server
# without RDS's certificate for this host name is refused); the stack's own container: libpq's
# default.
_DB_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_db_sslmode = _env("DJANGO_DB_SSLMODE")
_db_sslrootcert = _env("DJANGO_DB_SSLROOTCERT")
if _db_sslmode and _db_sslmode not in _DB_SSLMODES:
    _problems.append(f"DJANGO_DB_SSLMODE (one of {', '.join(_DB_SSLMODES)}; got {_db_sslmode!r})")
elif _db_sslmode:
    DATABASES["default"]["OPTIONS"]["sslmode"] = _db_sslmode
if _db_sslmode in ("verify-ca", "verify-full") and not _db_sslrootcert:
    _problems.append(f"DJANGO_DB_SSLROOTCERT (the CA file the database's certificate is checked against; required with DJANGO_DB_SSLMODE={_db_sslmode})")
if _db_sslrootcert:
    if not os.path.isfile(_db_sslrootcert):
        _problems.append(f"DJANGO_DB_SSLROOTCERT (no such file: {_db_sslrootcert})")
    DATABASES["default"]["OPTIONS"]["sslrootcert"] = _db_sslrootcert

# ---------------------------------------------------------------------------------------------
# Cache: shared by all uWSGI processes. DJANGO_CACHE_LOCATION (host:port) names memcached (the
# cache service of docker-compose.yml); a cache that does not answer is a miss, never an error:
# the site then serves every page from the database, slower, and /healthz says "degraded".
# Without it, the database (table mymdb_cache, made by `manage.py createcachetable` at container
# start, after migrate).
# ---------------------------------------------------------------------------------------------
CACHE_TIMEOUT = _int("DJANGO_CACHE_TIMEOUT", 60)


# Cached pages and page parts belong to a release: a new version never serves what the old one
# cached (during a deploy both run side by side and share the cache), so after a deploy no
# visitor sees the old version for longer than CACHE_TIMEOUT. Sessions are not affected: their
# cache is written through to the database (cached_db below).
# A new secret key starts afresh too: no page cached for a session under the old
# key is served after it.
CACHE_KEY_PREFIX = f"mymdb-{release_digest()}-{salted_hmac('cache prefix', 'secret key', secret=SECRET_KEY or '-', algorithm='sha256').hexdigest()[:8]}"
CACHE_LOCATION = _env("DJANGO_CACHE_LOCATION")
if CACHE_LOCATION and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*:[0-9]{1,5}", CACHE_LOCATION):
    _problems.append(f"DJANGO_CACHE_LOCATION (must be host:port, got {CACHE_LOCATION!r})")
    CACHE_LOCATION = ""
if CACHE_LOCATION and importlib.util.find_spec("pymemcache") is None:
    _problems.append(
        "DJANGO_CACHE_LOCATION (set, but pymemcache is not installed: install python3-pymemcache, "
        "or pymemcache from PyPI)"
    )
if CACHE_LOCATION:
    CACHES = {
        "default": {
            "BACKEND": "core.caching.MemcachedCache",  # PyMemcacheCache, connections kept
            "LOCATION": CACHE_LOCATION,
            "TIMEOUT": CACHE_TIMEOUT,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            # pymemcache's HashClient: a cache that is down or slow is a miss (ignore_exc), tried
            # again after dead_timeout seconds, so requests do not each wait for it.
            "OPTIONS": {
                "connect_timeout": 0.5,
                "timeout": 0.5,
                "no_delay": True,
                "ignore_exc": True,
                "retry_attempts": 1,
                "retry_timeout": 1,
                "dead_timeout": 5,
            },
        }
    }
    # Sessions read from the cache, written through to the database: a restarted cache loses no
    # login.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "mymdb_cache",
            "TIMEOUT": CACHE_TIMEOUT,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
CACHE_MIDDLEWARE_SECONDS = CACHE_TIMEOUT

# ---------------------------------------------------------------------------------------------
# Logging (stdout, configured in common_settings.py; only the level is checked here)
# ---------------------------------------------------------------------------------------------
LOG_LEVEL = parse_log_level(_env("DJANGO_LOG_LEVEL"))
if LOG_LEVEL is None:
    _problems.append(
        "DJANGO_LOG_LEVEL (must be DEBUG, INFO, WARNING, ERROR or CRITICAL, in any letter case, "
        f"got {_env('DJANGO_LOG_LEVEL')!r})"
    )
    LOG_LEVEL = "INFO"
LOGGING["root"]["level"] = LOG_LEVEL
LOGGING["loggers"]["django"]["level"] = LOG_LEVEL

# ---------------------------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True

SECURE_SSL = _bool("DJANGO_SECURE_SSL", default=False)
if SECURE_SSL:
    # TLS is terminated in front of the container (load balancer / proxy), which sets
    # X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probes speak plain HTTP
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # HSTS is sent by the front (Caddy) on every HTTPS response, its own errors included, with the
    # max-age of MYMDB_HSTS_SECONDS (docker/proxy/start.sh); Django adds none of its own.
    SILENCED_SYSTEM_CHECKS = ["security.W004"]
else:
    # No TLS in front of the site yet, so HTTPS redirects, HSTS and secure-only cookies would
    # break it. `check --deploy` warns about exactly these four; they are silenced ONLY while
    # DJANGO_SECURE_SSL is false. Turn on DJANGO_SECURE_SSL=true once TLS is in front.
    SILENCED_SYSTEM_CHECKS = [
        "security.W004",  # SECURE_HSTS_SECONDS not set
        "security.W008",  # SECURE_SSL_REDIRECT not True
        "security.W012",  # SESSION_COOKIE_SECURE not True
        "security.W016",  # CSRF_COOKIE_SECURE not True
    ]

# ---------------------------------------------------------------------------------------------
# Uploads: S3 when a bucket is named, else the local media directory
# ---------------------------------------------------------------------------------------------
UPLOAD_S3_BUCKET = _env("DJANGO_UPLOAD_S3_BUCKET")
if UPLOAD_S3_BUCKET:
    # Without keys boto3's default credential chain is used (instance / task role). Keys, where
    # the host has none: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, the secret also from
    # AWS_SECRET_ACCESS_KEY_FILE (a Docker secret, which boto3 itself does not read).
    _s3_options = {
        "bucket_name": UPLOAD_S3_BUCKET,
        "location": "uploads",  # public read is granted on the uploads/ prefix only
        "default_acl": None,  # the bucket has ACLs disabled (bucket owner enforced)
        "querystring_auth": False,  # plain public URLs
        "file_overwrite": False,
    }
    _region = _env("AWS_S3_REGION_NAME") or _env("AWS_DEFAULT_REGION")
    if _region:
        _s3_options["region_name"] = _region
    _upload_key_id, _upload_secret = _env("AWS_ACCESS_KEY_ID"), _secret("AWS_SECRET_ACCESS_KEY", required=False)
    if _upload_key_id and _upload_secret:
        _s3_options.update(access_key=_upload_key_id, secret_key=_upload_secret)
    _endpoint = _env("AWS_S3_ENDPOINT_URL")
    if _endpoint:
        _s3_options["endpoint_url"] = _endpoint
        _s3_options["addressing_style"] = "path"
    if importlib.util.find_spec("storages.backends.s3") is None:
        # Debian ships the S3 backend separately from python3-django-storages.
        _problems.append(
            "DJANGO_UPLOAD_S3_BUCKET (set, but storages.backends.s3 is not installed: "
            "install python3-django-storages-s3, or django-storages[s3] from PyPI)"
        )
    STORAGES = {
        **STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _s3_options},
    }

# ---------------------------------------------------------------------------------------------
# Report every problem at once
# ---------------------------------------------------------------------------------------------
if _problems:
    raise ImproperlyConfigured(
        "Production settings: missing or invalid environment variables: " + "; ".join(_problems)
    )
