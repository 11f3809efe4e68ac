"""What nginx may keep for anonymous visitors (X-Accel-Expires), and what Django caches."""
from unittest import mock

from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.http import HttpResponse
from django.db import connection
from django.test import RequestFactory, TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from core.caching import (
    ANONYMOUS_PAGE,
    NGINX_CACHE_HEADER,
    get_top_movies,
    movie_article,
    shareable,
    user_vote,
)
from core.models import Role, Vote

from .helpers import make_movie, make_person, make_user


@override_settings(CACHE_MIDDLEWARE_SECONDS=7)
class AnonymousPageTests(TestCase):
    def setUp(self):
        cache.clear()
        self.person = make_person("Pat", "Player")
        self.movie = make_movie("Shared")
        Role.objects.create(movie=self.movie, person=self.person, name="Lead")
        self.pages = ["/", "/movies/top", f"/movie/{self.movie.pk}/", f"/person/{self.person.pk}/"]

    def tearDown(self):
        cache.clear()

    def test_anonymous_pages_may_be_kept_for_the_cache_lifetime(self):
        for page in self.pages:
            with self.subTest(page=page):
                response = self.client.get(page)
                self.assertEqual(response.status_code, 200)
                self.assertEqual(response.get(NGINX_CACHE_HEADER), "7")
                self.assertFalse(response.cookies, "a shared page sets no cookie")

    def test_head_is_shareable_too(self):
        self.assertEqual(self.client.head(self.pages[2]).get(NGINX_CACHE_HEADER), "7")

    def test_a_logged_in_users_pages_never(self):
        user = make_user("carol")
        self.client.force_login(user)
        Vote.objects.create(user=user, movie=self.movie, value=1)
        for page in self.pages:
            with self.subTest(page=page):
                response = self.client.get(page)
                self.assertEqual(response.status_code, 200)
                self.assertIsNone(response.get(NGINX_CACHE_HEADER))
        self.assertContains(self.client.get(self.pages[2]), "Logged in as carol")

    def test_a_request_with_a_session_cookie_never_even_if_the_session_is_gone(self):
        self.client.cookies["sessionid"] = "no-such-session"
        response = self.client.get(self.pages[2])
        self.assertEqual(response.status_code, 200)
        self.assertIsNone(response.get(NGINX_CACHE_HEADER))

    def test_an_anonymous_session_never(self):
        session = SessionStore()
        session["something"] = "kept for this visitor"
        session.save()
        self.client.cookies["sessionid"] = session.session_key
        self.assertIsNone(self.client.get("/movies/top").get(NGINX_CACHE_HEADER))

    def test_not_found_pages_and_other_pages_never(self):
        self.assertEqual(self.client.get("/movie/999999/").status_code, 404)
        self.assertIsNone(self.client.get("/movie/999999/").get(NGINX_CACHE_HEADER))
        for page in ("/user/login", "/user/register"):
            with self.subTest(page=page):
                self.assertIsNone(self.client.get(page).get(NGINX_CACHE_HEADER))

    def test_a_form_error_page_never(self):
        user = make_user("dave")
        self.client.force_login(user)
        response = self.client.post(f"/movie/{self.movie.pk}/image/upload", {})
        self.assertEqual(response.status_code, 400)
        self.assertIsNone(response.get(NGINX_CACHE_HEADER))

    @override_settings(CACHE_MIDDLEWARE_SECONDS=0)
    def test_lifetime_zero_turns_it_off(self):
        self.assertIsNone(self.client.get(self.pages[2]).get(NGINX_CACHE_HEADER))

    def test_shareable_refuses_cookies_posts_and_private_answers(self):
        factory = RequestFactory()

        def marked(**headers):
            response = HttpResponse("page", headers=headers)
            setattr(response, ANONYMOUS_PAGE, True)
            return response

        self.assertTrue(shareable(factory.get("/"), marked()))
        self.assertFalse(shareable(factory.get("/"), HttpResponse("not marked")))
        self.assertFalse(shareable(factory.post("/"), marked()))
        self.assertFalse(shareable(factory.get("/"), marked(**{"Cache-Control": "private"})))
        self.assertFalse(shareable(factory.get("/"), marked(**{"Cache-Control": "no-store"})))
        with_cookie = marked()
        with_cookie.set_cookie("csrftoken", "abc")
        self.assertFalse(shareable(factory.get("/"), with_cookie))


class MemcachedConnectionTests(TestCase):
    """The suite runs against the cache service (DJANGO_CACHE_LOCATION, see tests/system)."""

    def test_requests_keep_their_connection_to_memcached(self):
        from pymemcache.client.base import Client

        host, port = settings.CACHE_LOCATION.split(":")
        stats = Client((host, int(port)), connect_timeout=2, timeout=2)
        movie = make_movie("Kept Connected")
        self.client.force_login(make_user("connie"))
        self.assertEqual(self.client.get(f"/movie/{movie.pk}/").status_code, 200)
        before = stats.stats()[b"total_connections"]
        for _ in range(20):
            self.assertEqual(self.client.get(f"/movie/{movie.pk}/").status_code, 200)
        opened = stats.stats()[b"total_connections"] - before
        stats.close()
        # Django closes caches after every request; ours keeps the connection (core.caching.
        # MemcachedCache). At most one: the cache service's healthcheck may connect meanwhile.
        self.assertLessEqual(opened, 1, f"20 requests opened {opened} connections to memcached")

    def test_a_change_is_shown_even_when_memcached_failed_a_moment_before(self):
        # pymemcache's HashClient, after a command of this thread failed (a timeout on a busy
        # machine), skips every command for a while; the invalidation of a vote must not be
        # skipped, or the movie's page shows the old score for the cache's TIMEOUT.
        cache.clear()
        movie = make_movie("Busy Machine")
        page = f"/movie/{movie.pk}/"
        self.client.force_login(make_user("bea"))
        self.assertContains(self.client.get(page), '<span id="score">0</span>', html=True)
        hash_client = cache._cache
        for client in hash_client.clients.values():
            hash_client._mark_failed_server(client.server)  # what a timeout a moment ago leaves behind
        Vote.objects.create(user=make_user("vic"), movie=movie, value=1)
        hash_client._failed_clients.clear()  # a moment later: commands are sent again
        self.assertContains(self.client.get(page), '<span id="score">1</span>', html=True)
        cache.clear()

    def test_a_logged_out_session_stays_out_even_when_memcached_failed_a_moment_before(self):
        # Sessions are read from the cache first (cached_db): a logout whose delete were skipped
        # would leave the session cookie valid for the cache's TIMEOUT.
        cache.clear()
        page = f"/movie/{make_movie('Logged Out').pk}/"
        self.client.force_login(make_user("lee"))
        self.assertContains(self.client.get(page), "Logged in as lee")
        cookie = self.client.cookies[settings.SESSION_COOKIE_NAME].value
        hash_client = cache._cache
        for client in hash_client.clients.values():
            hash_client._mark_failed_server(client.server)
        self.client.post("/user/logout")
        hash_client._failed_clients.clear()
        self.client.cookies[settings.SESSION_COOKIE_NAME] = cookie  # the old cookie, sent again
        self.assertNotContains(self.client.get(page), "Logged in as lee")
        cache.clear()


class SessionUserCacheTests(TestCase):
    """A logged-in page takes its user from the cache, and any change of the user shows at once."""

    def setUp(self):
        cache.clear()
        self.user = make_user("lou")
        self.page = f"/movie/{make_movie('Logged').pk}/"
        self.client.force_login(self.user)
        self.assertContains(self.client.get(self.page), "Logged in as lou")

    def tearDown(self):
        cache.clear()

    def test_no_query_for_the_user(self):
        with CaptureQueriesContext(connection) as queries:
            self.assertContains(self.client.get(self.page), "Logged in as lou")
        self.assertFalse([q["sql"] for q in queries if "auth_user" in q["sql"]])

    def test_a_new_name_shows_at_once(self):
        self.user.username = "louise"
        self.user.save()
        self.assertContains(self.client.get(self.page), "Logged in as louise")

    def test_a_new_password_logs_other_sessions_out_at_once(self):
        self.user.set_password("another-long-password-2")
        self.user.save()
        page = self.client.get(self.page)
        self.assertNotContains(page, "Logged in as")
        self.assertContains(page, 'id="login-link"')

    def test_a_deactivated_or_deleted_user_is_logged_out_at_once(self):
        self.user.is_active = False
        self.user.save()
        self.assertNotContains(self.client.get(self.page), "Logged in as")
        other = make_user("max")
        self.client.force_login(other)
        self.assertContains(self.client.get(self.page), "Logged in as max")
        other.delete()
        self.assertNotContains(self.client.get(self.page), "Logged in as")

    def test_a_user_read_before_a_deactivation_is_not_kept_after_it(self):
        # a request reads the user, the user is deactivated meanwhile, then the request stores
        # what it read: the next request must not take the user from the cache
        from django.contrib import auth

        cache.clear()
        real = auth.get_user

        def read_then_deactivated(request):
            user = real(request)
            self.user.is_active = False
            self.user.save()
            return user

        with mock.patch("django.contrib.auth.get_user", side_effect=read_then_deactivated):
            self.assertContains(self.client.get(self.page), "Logged in as lou")
        self.assertNotContains(self.client.get(self.page), "Logged in as")

    def test_a_session_with_another_login_is_checked_again(self):
        from django.contrib.auth import HASH_SESSION_KEY

        session = self.client.session
        session[HASH_SESSION_KEY] = "not-the-users-password-hash"
        session.save()
        self.assertNotContains(self.client.get(self.page), "Logged in as")


class CachingOffTests(TestCase):
    def test_timeout_zero_reads_and_writes_nothing(self):
        movie = make_movie("Uncached")
        user = make_user("hal")
        self.client.force_login(user)
        with mock.patch("core.caching.cache") as fake:
            fake.default_timeout = 0  # DJANGO_CACHE_TIMEOUT=0
            get_top_movies()
            self.assertEqual(movie_article(movie.pk)["title"], "Uncached")
            self.assertIsNone(user_vote(movie.pk, user).pk)
            self.assertContains(self.client.get(f"/movie/{movie.pk}/"), "Logged in as hal")
        fake.get.assert_not_called()
        fake.set.assert_not_called()
        fake.get_or_set.assert_not_called()


class MovieArticleCacheTests(TestCase):
    """The movie's page minus the visitor's part is cached, and dropped by what changes it."""

    def setUp(self):
        cache.clear()
        self.movie = make_movie("Kept")
        self.page = f"/movie/{self.movie.pk}/"
        self.voter = make_user("fran")
        Vote.objects.create(user=self.voter, movie=self.movie, value=1)

    def tearDown(self):
        cache.clear()

    def score(self):
        return self.client.get(self.page)

    def test_served_from_the_cache_until_a_vote_changes_it(self):
        self.assertContains(self.score(), '<span id="score">1</span>', html=True)
        # A change that bypasses signals is not seen: the page part is cached.
        Vote.objects.filter(movie=self.movie).update(value=-1)
        self.assertContains(self.score(), '<span id="score">1</span>', html=True)
        Vote.objects.create(user=make_user("gus"), movie=self.movie, value=-1)
        self.assertContains(self.score(), '<span id="score">-2</span>', html=True)
        Vote.objects.filter(user=self.voter).get().delete()
        self.assertContains(self.score(), '<span id="score">-1</span>', html=True)

    def test_a_page_computed_before_a_vote_is_not_kept_after_it(self):
        # a request renders the movie's page, a vote lands meanwhile (and drops the page), then
        # the request stores what it rendered: the next request must not be given that
        import core.caching

        cache.clear()
        real = core.caching.render_to_string
        voted = []

        def rendered_then_voted(*args, **kwargs):
            html = real(*args, **kwargs)
            if not voted:
                voted.append(Vote.objects.create(user=make_user("rae"), movie=self.movie, value=1))
            return html

        with mock.patch("core.caching.render_to_string", side_effect=rendered_then_voted):
            self.assertContains(self.score(), '<span id="score">1</span>', html=True)
        self.assertContains(self.score(), '<span id="score">2</span>', html=True)

    def test_a_new_role_or_an_edit_of_the_movie_shows_at_once(self):
        self.score()
        Role.objects.create(movie=self.movie, person=make_person("Ned", "New"), name="Cameo")
        self.assertContains(self.score(), "as Cameo")
        self.movie.title = "Renamed"
        self.movie.save()
        self.assertContains(self.score(), "<title>Renamed | MyMDB</title>", html=False)

    def test_the_cached_part_holds_nothing_of_a_visitor(self):
        self.client.force_login(self.voter)
        self.assertContains(self.score(), "You voted up")
        self.client.logout()
        anonymous = self.score()
        self.assertNotContains(anonymous, "fran")
        self.assertNotContains(anonymous, "You voted")
        self.assertContains(anonymous, '<span id="score">1</span>', html=True)

    def test_the_users_own_vote_is_cached_until_it_changes(self):
        self.client.force_login(self.voter)
        self.assertContains(self.score(), "You voted up")
        # A change that bypasses signals is not seen: the user's vote is cached.
        Vote.objects.filter(user=self.voter).update(value=-1)
        self.assertContains(self.score(), "You voted up")
        vote = Vote.objects.get(user=self.voter)
        vote.value = -1
        vote.save()
        self.assertContains(self.score(), "You voted down")
        vote.delete()
        page = self.score()
        self.assertNotContains(page, "You voted")
        self.assertContains(page, f'action="/movie/{self.movie.pk}/vote"')

    def test_a_missing_movie_is_404(self):
        self.assertEqual(self.client.get("/movie/999999/").status_code, 404)
