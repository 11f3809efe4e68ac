"""A browser-like walk through the site with CSRF checks enforced (the default test client
skips them)."""
import re

from django.core.cache import cache
from django.test import Client, TestCase

from core.models import Vote
from core.tests.helpers import make_movie

PASSWORD = "a-long-test-password-1"


def csrf_token(response):
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, "no CSRF token in page"
    return match.group(1).decode()


class BrowserFlowTests(TestCase):
    def setUp(self):
        cache.clear()
        self.client = Client(enforce_csrf_checks=True)
        self.movie = make_movie("Flow Movie")

    def test_register_vote_change_vote_logout(self):
        page = self.client.get("/user/register")
        response = self.client.post(
            "/user/register",
            {
                "username": "flow",
                "password1": PASSWORD,
                "password2": PASSWORD,
                "csrfmiddlewaretoken": csrf_token(page),
            },
        )
        self.assertRedirects(response, "/")

        # Follow a movie title link from the list.
        listing = self.client.get("/")
        self.assertContains(listing, "Logged in as flow")
        link = re.search(r'<a href="(/movie/\d+/)">Flow Movie</a>', listing.content.decode()).group(1)
        detail = self.client.get(link)
        action = re.search(r'<form method="post" action="([^"]+)" id="vote-form">', detail.content.decode()).group(1)
        response = self.client.post(action, {"value": "1", "csrfmiddlewaretoken": csrf_token(detail)})
        self.assertRedirects(response, link)
        self.assertEqual(Vote.objects.get().value, 1)

        detail = self.client.get(link)
        self.assertContains(detail, '<span id="score">1</span>', html=True)
        action = re.search(r'<form method="post" action="([^"]+)" id="vote-form">', detail.content.decode()).group(1)
        self.client.post(action, {"value": "-1", "csrfmiddlewaretoken": csrf_token(detail)})
        self.assertEqual(Vote.objects.get().value, -1)
        self.assertContains(self.client.get("/movies/top"), "score -1")

        # Logging out needs the CSRF token too.
        self.assertEqual(self.client.post("/user/logout").status_code, 403)
        response = self.client.post("/user/logout", {"csrfmiddlewaretoken": csrf_token(detail)})
        self.assertEqual(response.status_code, 302)
        self.assertNotContains(self.client.get("/"), "Logged in as")

    def test_vote_without_csrf_token_is_refused(self):
        from django.contrib.auth import get_user_model

        get_user_model().objects.create_user("nocsrf", password=PASSWORD)
        page = self.client.get("/user/login")
        self.client.post(
            "/user/login",
            {"username": "nocsrf", "password": PASSWORD, "csrfmiddlewaretoken": csrf_token(page)},
        )
        response = self.client.post(f"/movie/{self.movie.pk}/vote", {"value": "1"})
        self.assertEqual(response.status_code, 403)
        self.assertFalse(Vote.objects.exists())
