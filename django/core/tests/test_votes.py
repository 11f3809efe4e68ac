from django.core.cache import cache
from django.test import TestCase

from core.models import Vote

from .helpers import make_movie, make_user


class VotePermissionTests(TestCase):
    def setUp(self):
        cache.clear()
        self.movie = make_movie()
        self.alice = make_user("alice")
        self.bob = make_user("bob")

    def test_anonymous_cannot_vote(self):
        response = self.client.post(f"/movie/{self.movie.pk}/vote", {"value": 1})
        self.assertEqual(response.status_code, 302)
        self.assertTrue(response["Location"].startswith("/user/login?next="))
        self.assertFalse(Vote.objects.exists())

    def test_anonymous_cannot_update_a_vote(self):
        vote = Vote.objects.create(user=self.alice, movie=self.movie, value=1)
        response = self.client.post(f"/movie/{self.movie.pk}/vote/{vote.pk}", {"value": -1})
        self.assertEqual(response.status_code, 302)
        vote.refresh_from_db()
        self.assertEqual(vote.value, 1)

    def test_user_votes_up_then_changes_to_down(self):
        self.client.force_login(self.alice)
        response = self.client.post(f"/movie/{self.movie.pk}/vote", {"value": 1})
        self.assertRedirects(response, f"/movie/{self.movie.pk}/")
        vote = Vote.objects.get()
        self.assertEqual((vote.user, vote.movie, vote.value), (self.alice, self.movie, 1))
        response = self.client.post(f"/movie/{self.movie.pk}/vote/{vote.pk}", {"value": -1})
        self.assertRedirects(response, f"/movie/{self.movie.pk}/")
        vote.refresh_from_db()
        self.assertEqual(vote.value, -1)
        self.assertEqual(Vote.objects.count(), 1)
        page = self.client.get(f"/movie/{self.movie.pk}/")
        self.assertContains(page, '<span id="score">-1</span>', html=True)

    def test_second_create_updates_instead_of_duplicating(self):
        self.client.force_login(self.alice)
        self.client.post(f"/movie/{self.movie.pk}/vote", {"value": 1})
        self.client.post(f"/movie/{self.movie.pk}/vote", {"value": -1})
        self.assertEqual(list(Vote.objects.values_list("value", flat=True)), [-1])

    def test_user_cannot_change_another_users_vote(self):
        vote = Vote.objects.create(user=self.alice, movie=self.movie, value=1)
        self.client.force_login(self.bob)
        response = self.client.post(f"/movie/{self.movie.pk}/vote/{vote.pk}", {"value": -1})
        self.assertEqual(response.status_code, 403)
        self.assertTemplateUsed(response, "403.html")
        self.assertContains(response, "403 Forbidden", status_code=403)
        vote.refresh_from_db()
        self.assertEqual((vote.user, vote.value), (self.alice, 1))

    def test_invalid_value_is_rejected(self):
        self.client.force_login(self.alice)
        for value in ("0", "2", "up", ""):
            response = self.client.post(f"/movie/{self.movie.pk}/vote", {"value": value})
            self.assertEqual(response.status_code, 400, value)
        self.assertFalse(Vote.objects.exists())

    def test_vote_on_missing_movie_is_404(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.post("/movie/999999/vote", {"value": 1}).status_code, 404)

    def test_vote_urls_accept_post_only(self):
        self.client.force_login(self.alice)
        self.assertEqual(self.client.get(f"/movie/{self.movie.pk}/vote").status_code, 405)
