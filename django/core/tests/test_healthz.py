from unittest import mock

from django.conf import settings
from django.db import OperationalError
from django.test import TestCase, override_settings


class HealthzTests(TestCase):
    def test_ok_when_database_answers(self):
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"ok")
        self.assertIn("no-store", response["Cache-Control"])

    def test_ok_with_a_disallowed_host_header(self):
        self.assertEqual(self.client.get("/", HTTP_HOST="10.9.8.7").status_code, 400)
        response = self.client.get("/healthz", HTTP_HOST="10.9.8.7")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"ok")

    def test_no_auth_needed_and_no_session_cookie(self):
        response = self.client.get("/healthz")
        self.assertNotIn(settings.SESSION_COOKIE_NAME, response.cookies)
        self.assertNotIn(settings.CSRF_COOKIE_NAME, response.cookies)

    @override_settings(SECURE_SSL_REDIRECT=True)
    def test_not_redirected_to_https(self):
        self.assertEqual(self.client.get("/movies/top").status_code, 301)
        self.assertEqual(self.client.get("/healthz").status_code, 200)

    def test_503_when_database_fails(self):
        with mock.patch("core.middleware.connection") as connection:
            connection.cursor.side_effect = OperationalError("server closed the connection")
            response = self.client.get("/healthz", HTTP_HOST="10.9.8.7")
        self.assertEqual(response.status_code, 503)
        self.assertIn("no-store", response["Cache-Control"])

    def test_middleware_is_first(self):
        self.assertEqual(settings.MIDDLEWARE[0], "core.middleware.HealthCheckMiddleware")


# A memcached address where nothing listens: the cache is down.
DOWN_CACHE = {
    "default": {
        "BACKEND": "core.caching.MemcachedCache",
        "LOCATION": "127.0.0.1:9",
        "OPTIONS": {"connect_timeout": 0.5, "timeout": 0.5, "ignore_exc": True, "retry_attempts": 1, "dead_timeout": 5},
    }
}


@override_settings(CACHES=DOWN_CACHE)
class CacheDownTests(TestCase):
    def test_healthz_says_degraded_but_stays_healthy(self):
        response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.content, b"ok, degraded: cache unreachable (pages are built without it)")

    def test_pages_still_served(self):
        from .helpers import make_movie

        movie = make_movie("Served Uncached")
        for page in ("/", "/movies/top", f"/movie/{movie.pk}/"):
            with self.subTest(page=page):
                self.assertEqual(self.client.get(page).status_code, 200)
        self.assertContains(self.client.get(f"/movie/{movie.pk}/"), "Served Uncached")

    def test_503_names_both_when_the_database_fails_too(self):
        with mock.patch("core.middleware.connection") as connection:
            connection.cursor.side_effect = OperationalError("server closed the connection")
            response = self.client.get("/healthz")
        self.assertEqual(response.status_code, 503)
        self.assertIn(b"database unavailable; cache unreachable", response.content)
