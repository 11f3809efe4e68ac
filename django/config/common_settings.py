"""Settings shared by development and production. No secrets here: the secret key, hosts and
database credentials are set by dev_settings.py or production_settings.py."""
import os
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------
BASE_DIR = Path(__file__).resolve().parent.parent  # the django/ directory

# ---------------------------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------------------------
INSTALLED_APPS = [
    "user",
    "core",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

# HealthCheckMiddleware must stay first: it answers /healthz before anything calls
# request.get_host() (so ALLOWED_HOSTS cannot reject the probe), before the HTTPS redirect and
# before any caching. AnonymousPageMiddleware comes right after it: it sees every response last,
# with every cookie the others set, and marks only what nginx may share (core/caching.py).
# CachedAuthenticationMiddleware is Django's AuthenticationMiddleware with the user from the cache.
MIDDLEWARE = [
    "core.middleware.HealthCheckMiddleware",
    "core.caching.AnonymousPageMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.middleware.CachedAuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],  # base.html, 403.html, 404.html
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# ---------------------------------------------------------------------------------------------
# Database (engine only; connection details come from dev/production settings)
# ---------------------------------------------------------------------------------------------
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/user/login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# ---------------------------------------------------------------------------------------------
# Internationalisation
# ---------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------------------------------------
# Static files and uploads
# ---------------------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or str(BASE_DIR / "gathered_static_files")

MEDIA_URL = "/media/"
MEDIA_ROOT = os.environ.get("DJANGO_MEDIA_ROOT") or str(BASE_DIR.parent / "media_root")

# production_settings.py replaces "default" with S3 when DJANGO_UPLOAD_S3_BUCKET is set.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The admin site is at /<ADMIN_URL>/ (production_settings.py reads DJANGO_ADMIN_URL).
ADMIN_URL = "admin"

# Posters bigger than this are refused (nginx also caps request bodies at 2 MB), and so are posters
# of more pixels than this (read from the file's header, before decoding: a 2 MB PNG can hold
# 13,000 x 13,000 pixels, 670 MB for every browser that shows it). Those kept are written again
# by Pillow without their metadata (core/forms.py).
MYMDB_MAX_POSTER_BYTES = 2 * 1024 * 1024
MYMDB_MAX_POSTER_PIXELS = 16_000_000

# ---------------------------------------------------------------------------------------------
# Logging: everything to stdout, where Docker / runit collect it
# ---------------------------------------------------------------------------------------------
# DJANGO_LOG_LEVEL: one of LOG_LEVELS in any letter case (the tasks' checker accepts the same and
# passes it on upper-cased); unset or blank means INFO. production_settings.py refuses any other
# value, naming the variable; with other settings an invalid value falls back to INFO here.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def parse_log_level(raw):
    """The level DJANGO_LOG_LEVEL names, upper-cased; INFO when blank; None when it names none."""
    value = (raw or "").strip()
    if not value:
        return "INFO"
    # ASCII only: str.upper() would also turn the dotless "ı" of "crıtıcal" into "I".
    level = value.upper()
    return level if value.isascii() and level in LOG_LEVELS else None


LOG_LEVEL = parse_log_level(os.environ.get("DJANGO_LOG_LEVEL")) or "INFO"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["stdout"], "level": LOG_LEVEL, "propagate": False},
    },
}
