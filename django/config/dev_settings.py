"""Development settings: DEBUG on, a throwaway secret key, local-memory cache."""
import os
import sys

from .common_settings import *  # noqa: F401,F403
from .common_settings import INSTALLED_APPS, MIDDLEWARE

# ---------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------
DEBUG = True
SECRET_KEY = "DEVELOPMENT-ONLY-INSECURE-KEY-never-use-this-in-production-!!!"
ALLOWED_HOSTS = [
    host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()
] or ["localhost", "127.0.0.1", "[::1]"]
INTERNAL_IPS = ["127.0.0.1"]

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("DJANGO_DB_NAME", "mymdb"),
        "USER": os.environ.get("DJANGO_DB_USER", "mymdb"),
        "PASSWORD": os.environ.get("DJANGO_DB_PASSWORD", "development"),
        "HOST": os.environ.get("DJANGO_DB_HOST", "localhost"),
        "PORT": os.environ.get("DJANGO_DB_PORT", "5432"),
    }
}

# ---------------------------------------------------------------------------------------------
# Cache: per-process memory, short timeout so edits show up quickly
# ---------------------------------------------------------------------------------------------
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "mymdb-dev",
        "TIMEOUT": 5,
    }
}
CACHE_MIDDLEWARE_SECONDS = 5

# ---------------------------------------------------------------------------------------------
# Django Debug Toolbar, when installed (not while running tests: it refuses to run there)
# ---------------------------------------------------------------------------------------------
try:
    import debug_toolbar  # noqa: F401
except ImportError:
    debug_toolbar = None

if debug_toolbar is not None and "test" not in sys.argv[1:2]:
    INSTALLED_APPS = [*INSTALLED_APPS, "debug_toolbar"]
    # After HealthCheckMiddleware, which must stay first.
    MIDDLEWARE = [MIDDLEWARE[0], "debug_toolbar.middleware.DebugToolbarMiddleware", *MIDDLEWARE[1:]]
