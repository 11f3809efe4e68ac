from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import TestCase

PASSWORD = "a-long-test-password-1"


class UserViewTests(TestCase):
    def setUp(self):
        cache.clear()

    def test_register_creates_user_and_logs_in(self):
        response = self.client.get("/user/register")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, 'name="username"')
        response = self.client.post(
            "/user/register",
            {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD},
            follow=True,
        )
        self.assertRedirects(response, "/")
        self.assertTrue(get_user_model().objects.filter(username="newbie").exists())
        self.assertContains(response, "Logged in as newbie")

    def test_register_rejects_mismatched_passwords(self):
        response = self.client.post(
            "/user/register", {"username": "x", "password1": PASSWORD, "password2": PASSWORD + "!"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertFalse(get_user_model().objects.filter(username="x").exists())

    def test_login_and_logout(self):
        get_user_model().objects.create_user("carol", password=PASSWORD)
        anonymous = self.client.get("/")
        self.assertContains(anonymous, 'href="/user/login"')
        self.assertNotContains(anonymous, "Logged in as")

        response = self.client.get("/user/login")
        self.assertContains(response, 'name="password"')
        response = self.client.post(
            "/user/login", {"username": "carol", "password": PASSWORD}, follow=True
        )
        self.assertRedirects(response, "/")
        self.assertContains(response, "Logged in as carol")
        self.assertContains(response, 'action="/user/logout"')

        response = self.client.post("/user/logout", follow=True)
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("_auth_user_id", self.client.session)
        self.assertNotContains(self.client.get("/"), "Logged in as")

    def test_a_new_secret_key_keeps_users_logged_in_when_the_old_one_is_a_fallback(self):
        from django.conf import settings
        from django.test import override_settings

        get_user_model().objects.create_user("dora", password=PASSWORD)
        self.client.post("/user/login", {"username": "dora", "password": PASSWORD})
        self.assertEqual(self.client.get("/user/login").wsgi_request.user.username, "dora")
        old = settings.SECRET_KEY
        with override_settings(SECRET_KEY="a-new-key-" + "n" * 50, SECRET_KEY_FALLBACKS=[old]):
            self.assertEqual(self.client.get("/user/login").wsgi_request.user.username, "dora")
        # without the fallback, a new key ends the session (the user checked before is not kept)
        with override_settings(SECRET_KEY="another-key-" + "a" * 50, SECRET_KEY_FALLBACKS=[]):
            self.assertFalse(self.client.get("/user/login").wsgi_request.user.is_authenticated)

    def test_login_honours_next(self):
        get_user_model().objects.create_user("dave", password=PASSWORD)
        response = self.client.post(
            "/user/login", {"username": "dave", "password": PASSWORD, "next": "/movies/top"}
        )
        self.assertRedirects(response, "/movies/top")

    def test_bad_password_stays_on_login_page(self):
        get_user_model().objects.create_user("erin", password=PASSWORD)
        response = self.client.post("/user/login", {"username": "erin", "password": "wrong"})
        self.assertEqual(response.status_code, 200)
        self.assertNotIn("_auth_user_id", self.client.session)

    def test_admin_registers_all_models(self):
        from django.contrib import admin

        from core.models import Movie, MovieImage, Person, Role, Vote

        for model in (Movie, Person, Role, Vote, MovieImage):
            self.assertTrue(admin.site.is_registered(model), model)
        self.assertEqual(self.client.get("/admin/").status_code, 302)

    def test_admin_at_the_address_of_its_setting(self):
        import importlib

        from django.test import override_settings
        from django.urls import clear_url_caches

        import config.urls

        def reload_urls():
            importlib.reload(config.urls)
            clear_url_caches()

        self.addCleanup(reload_urls)
        with override_settings(ADMIN_URL="staff-3f9a"):
            reload_urls()
            self.assertEqual(self.client.get("/staff-3f9a/").status_code, 302)
            self.assertEqual(self.client.get("/admin/").status_code, 404)
