import logging
import os
import threading

from django.contrib.auth.middleware import AuthenticationMiddleware
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.utils.functional import SimpleLazyObject

from .caching import session_user

logger = logging.getLogger(__name__)

HEALTH_PATHS = ("/healthz", "/healthz/")


def database_answers():
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any failure means "not healthy"
        logger.warning("healthz: database check failed", exc_info=True)
        return False


def cache_answers():
    """The cache keeps a value and gives it back (a key per thread: no race with other probes)."""
    key = f"healthz:{os.getpid()}:{threading.get_ident()}"
    token = os.urandom(8).hex()
    try:
        cache.set(key, token, 30)
        return cache.get(key) == token
    except Exception:  # any failure means "degraded"
        logger.warning("healthz: cache check failed", exc_info=True)
        return False


def health_response():
    """200 "ok"; 200 "ok, degraded: ..." when only the cache is down (the site serves, slower);
    503 when the database does not answer."""
    degraded = [] if cache_answers() else ["cache unreachable (pages are built without it)"]
    if not database_answers():
        body, status = "; ".join(["database unavailable", *degraded]), 503
    elif degraded:
        body, status = "ok, degraded: " + "; ".join(degraded), 200
    else:
        body, status = "ok", 200
    response = HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answers GET/HEAD /healthz: 200 "ok" when the database answers SELECT 1 and the cache keeps a
    value, 200 "ok, degraded: ..." when only the cache does not, else 503.

    Must be FIRST in MIDDLEWARE: it never calls request.get_host(), so probes by IP address
    are not rejected by ALLOWED_HOSTS, and it runs before the HTTPS redirect, sessions, CSRF
    and any caching.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info in HEALTH_PATHS and request.method in ("GET", "HEAD"):
            return health_response()
        return self.get_response(request)


class CachedAuthenticationMiddleware(AuthenticationMiddleware):
    """Django's AuthenticationMiddleware, with request.user from core.caching.session_user: a
    logged-in page makes no query for its user."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user(request))


def _user(request):
    if not hasattr(request, "_cached_user"):  # the name Django's middleware uses
        request._cached_user = session_user(request)
    return request._cached_user
