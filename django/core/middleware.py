import logging

from django.db import connection
from django.http import HttpResponse

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


def health_response():
    if database_answers():
        response = HttpResponse("ok", content_type="text/plain; charset=utf-8")
    else:
        response = HttpResponse(
            "database unavailable", status=503, content_type="text/plain; charset=utf-8"
        )
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answers GET/HEAD /healthz: 200 "ok" when the database answers SELECT 1, else 503.

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
