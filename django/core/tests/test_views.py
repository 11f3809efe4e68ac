from django.core.cache import cache
from django.test import TestCase
from django.urls import reverse

from core.models import Movie, Role, Vote

from .helpers import make_movie, make_person, make_user


class ViewTestCase(TestCase):
    def setUp(self):
        cache.clear()

    def tearDown(self):
        cache.clear()


class MovieListTests(ViewTestCase):
    def test_paginates_ten_per_page(self):
        for i in range(25):
            make_movie(f"Movie {i:02d}", year=1950 + i)
        first = self.client.get("/")
        self.assertEqual(first.status_code, 200)
        self.assertTemplateUsed(first, "core/movie_list.html")
        self.assertEqual(len(first.context["movie_list"]), 10)
        self.assertContains(first, "Page 1 of 3")
        self.assertContains(first, '?page=2')
        third = self.client.get("/?page=3")
        self.assertEqual(len(third.context["movie_list"]), 5)
        self.assertEqual(self.client.get("/?page=4").status_code, 404)

    def test_titles_are_links_to_detail(self):
        movie = make_movie("Linked Title")
        response = self.client.get(reverse("core:movie_list"))
        self.assertContains(response, f'<a href="/movie/{movie.pk}/">Linked Title</a>', html=True)

    def test_links_stylesheet(self):
        self.assertContains(self.client.get("/"), 'href="/static/core/mymdb.css"')

    def test_logged_in_pages_are_private(self):
        make_movie("Mine")
        anonymous = self.client.get("/")
        self.assertNotIn("private", anonymous.get("Cache-Control", ""))
        self.client.force_login(make_user())
        for _ in range(2):  # the page built, then the page from Django's per-cookie cache
            page = self.client.get("/")
            self.assertIn("private", page["Cache-Control"])
            self.assertNotIn("public", page["Cache-Control"])

    def test_list_is_cached_per_page_and_varies_on_cookie(self):
        make_movie("Before")
        first = self.client.get("/")
        self.assertIn("Cookie", first.get("Vary", ""))
        self.assertIn("max-age", first.get("Cache-Control", ""))
        make_movie("After")
        self.assertNotContains(self.client.get("/"), "After")  # served from the cache
        cache.clear()
        self.assertContains(self.client.get("/"), "After")


class MovieDetailTests(ViewTestCase):
    def setUp(self):
        super().setUp()
        self.director = make_person("Dora", "Director")
        self.writer = make_person("Walt", "Writer")
        self.actor = make_person("Andy", "Actor")
        self.movie = make_movie("Detailed", 1999, director=self.director)
        self.movie.writers.add(self.writer)
        Role.objects.create(movie=self.movie, person=self.actor, name="The Lead")

    def test_shows_credits_and_score(self):
        Vote.objects.create(user=make_user("a"), movie=self.movie, value=1)
        Vote.objects.create(user=make_user("b"), movie=self.movie, value=1)
        Vote.objects.create(user=make_user("c"), movie=self.movie, value=-1)
        response = self.client.get(reverse("core:movie_detail", kwargs={"pk": self.movie.pk}))
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Detailed")
        self.assertContains(response, '<span id="score">1</span>', html=True)
        self.assertContains(response, "Dora Director")
        self.assertContains(response, "Walt Writer")
        self.assertContains(response, "Andy Actor")
        self.assertContains(response, "as The Lead")
        self.assertContains(response, "PG - Parental Guidance Suggested")

    def test_score_zero_without_votes(self):
        response = self.client.get(f"/movie/{self.movie.pk}/")
        self.assertContains(response, '<span id="score">0</span>', html=True)

    def test_anonymous_sees_no_forms(self):
        response = self.client.get(f"/movie/{self.movie.pk}/")
        self.assertNotContains(response, "Vote up")
        self.assertNotContains(response, "Upload poster")
        self.assertContains(response, "to vote and upload posters")

    def test_logged_in_user_sees_vote_and_upload_forms(self):
        self.client.force_login(make_user())
        response = self.client.get(f"/movie/{self.movie.pk}/")
        self.assertContains(response, "Vote up")
        self.assertContains(response, "Vote down")
        self.assertContains(response, 'name="image"')
        self.assertContains(response, "Upload poster")
        self.assertContains(response, f'action="/movie/{self.movie.pk}/vote"')

    def test_existing_vote_posts_to_update_url(self):
        user = make_user()
        vote = Vote.objects.create(user=user, movie=self.movie, value=1)
        self.client.force_login(user)
        response = self.client.get(f"/movie/{self.movie.pk}/")
        self.assertContains(response, f'action="/movie/{self.movie.pk}/vote/{vote.pk}"')
        self.assertContains(response, "You voted up.")

    def test_missing_movie_is_404_with_custom_template(self):
        response = self.client.get("/movie/999999/")
        self.assertEqual(response.status_code, 404)
        self.assertTemplateUsed(response, "404.html")
        self.assertContains(response, "no such page", status_code=404)

    def test_unknown_url_is_404(self):
        response = self.client.get("/no/such/page")
        self.assertEqual(response.status_code, 404)
        self.assertTemplateUsed(response, "404.html")


class PersonDetailTests(ViewTestCase):
    def test_filmography(self):
        person = make_person("Multi", "Talent")
        directed = make_movie("Directed It", director=person)
        written = make_movie("Wrote It")
        written.writers.add(person)
        acted = make_movie("Acted In It")
        Role.objects.create(movie=acted, person=person, name="Cameo")
        response = self.client.get(reverse("core:person_detail", kwargs={"pk": person.pk}))
        self.assertEqual(response.status_code, 200)
        for movie in (directed, written, acted):
            self.assertContains(response, f'href="/movie/{movie.pk}/"')
        self.assertContains(response, "as Cameo")
        self.assertContains(response, "Born 1 January 1950")

    def test_missing_person_is_404(self):
        self.assertEqual(self.client.get("/person/999999/").status_code, 404)


class TopMoviesTests(ViewTestCase):
    def test_ordered_by_score_and_limited_to_ten(self):
        users = [make_user(f"voter{i}") for i in range(12)]
        movies = [make_movie(f"Film {i:02d}") for i in range(12)]
        # Film i gets i up-votes, so Film 11 is first.
        for i, movie in enumerate(movies):
            for user in users[:i]:
                Vote.objects.create(user=user, movie=movie, value=1)
        response = self.client.get("/movies/top")
        self.assertEqual(response.status_code, 200)
        top = response.context["top_movies"]
        self.assertEqual(len(top), 10)
        self.assertEqual([m.title for m in top], [f"Film {i:02d}" for i in range(11, 1, -1)])
        self.assertEqual([m.score for m in top], list(range(11, 1, -1)))

    def test_cached_but_refreshed_by_a_new_vote(self):
        movie_a, movie_b = make_movie("Alpha"), make_movie("Bravo")
        user1, user2 = make_user("one"), make_user("two")
        Vote.objects.create(user=user1, movie=movie_a, value=1)
        self.assertEqual([m.title for m in self.client.get("/movies/top").context["top_movies"]], ["Alpha"])

        # A change that bypasses signals (queryset update) is not seen: the list is cached.
        Vote.objects.filter(movie=movie_a).update(value=-1)
        cached = self.client.get("/movies/top").context["top_movies"]
        self.assertEqual([(m.title, m.score) for m in cached], [("Alpha", 1)])

        # Saving a vote drops the cached list at once.
        Vote.objects.create(user=user2, movie=movie_b, value=1)
        fresh = self.client.get("/movies/top").context["top_movies"]
        self.assertEqual([(m.title, m.score) for m in fresh], [("Bravo", 1), ("Alpha", -1)])

        # Deleting a vote too.
        Vote.objects.filter(movie=movie_b).get().delete()
        fresh = self.client.get("/movies/top").context["top_movies"]
        self.assertEqual([(m.title, m.score) for m in fresh], [("Alpha", -1)])
