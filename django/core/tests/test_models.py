import re

from django.db import IntegrityError, transaction
from django.test import TestCase

from core.models import Movie, Role, Vote, movie_directory_path_with_uuid

from .helpers import make_movie, make_person, make_user


class PersonTests(TestCase):
    def test_died_is_optional(self):
        person = make_person(died=None)
        person.refresh_from_db()
        self.assertIsNone(person.died)
        self.assertEqual(str(person), "Ada Example")


class MovieTests(TestCase):
    def test_rating_labels_and_defaults(self):
        movie = make_movie(rating=Movie.RATED_R)
        self.assertEqual(movie.get_rating_display(), "R - Restricted")
        self.assertEqual(Movie._meta.get_field("rating").default, Movie.NOT_RATED)
        self.assertEqual([value for value, _ in Movie.RATINGS], [0, 1, 2, 3])
        self.assertEqual(movie.website, "")
        self.assertIsNone(movie.director)

    def test_credits(self):
        director = make_person("Dee", "Rector")
        writer = make_person("Rita", "Writer")
        actor = make_person("Art", "Actor")
        movie = make_movie(director=director)
        movie.writers.add(writer)
        Role.objects.create(movie=movie, person=actor, name="Hero")
        self.assertEqual(list(director.directed.all()), [movie])
        self.assertEqual(list(writer.writing_credits.all()), [movie])
        self.assertEqual(list(actor.acting_credits.all()), [movie])

    def test_director_deleted_keeps_movie(self):
        director = make_person()
        movie = make_movie(director=director)
        director.delete()
        movie.refresh_from_db()
        self.assertIsNone(movie.director)

    def test_score_is_sum_of_votes(self):
        movie = make_movie()
        for name, value in (("a", 1), ("b", 1), ("c", -1)):
            Vote.objects.create(user=make_user(name), movie=movie, value=value)
        annotated = Movie.objects.all_with_related_persons_and_score().get(pk=movie.pk)
        self.assertEqual(annotated.score, 1)
        self.assertEqual(movie.get_score(), 1)

    def test_top_movies_order_and_unvoted_excluded(self):
        low, high, unvoted = make_movie("Low"), make_movie("High"), make_movie("Unvoted")
        users = [make_user(f"u{i}") for i in range(3)]
        Vote.objects.create(user=users[0], movie=low, value=Vote.DOWN)
        for user in users:
            Vote.objects.create(user=user, movie=high, value=Vote.UP)
        self.assertEqual(list(Movie.objects.top_movies()), [high, low])
        self.assertNotIn(unvoted, Movie.objects.top_movies())


class RoleTests(TestCase):
    def test_same_part_twice_is_refused_but_two_parts_are_allowed(self):
        movie, actor = make_movie(), make_person()
        Role.objects.create(movie=movie, person=actor, name="Twin A")
        Role.objects.create(movie=movie, person=actor, name="Twin B")
        with self.assertRaises(IntegrityError), transaction.atomic():
            Role.objects.create(movie=movie, person=actor, name="Twin A")


class VoteTests(TestCase):
    def test_one_vote_per_user_per_movie(self):
        user, movie = make_user(), make_movie()
        Vote.objects.create(user=user, movie=movie, value=Vote.UP)
        with self.assertRaises(IntegrityError), transaction.atomic():
            Vote.objects.create(user=user, movie=movie, value=Vote.DOWN)
        # Another user, or another movie, is fine.
        Vote.objects.create(user=make_user("bob"), movie=movie, value=Vote.DOWN)
        Vote.objects.create(user=user, movie=make_movie("Other"), value=Vote.DOWN)
        self.assertEqual(Vote.objects.count(), 3)

    def test_voted_on_updates(self):
        vote = Vote.objects.create(user=make_user(), movie=make_movie(), value=Vote.UP)
        first = vote.voted_on
        vote.value = Vote.DOWN
        vote.save()
        self.assertGreater(vote.voted_on, first)

    def test_get_vote_or_unsaved_blank_vote(self):
        user, movie = make_user(), make_movie()
        blank = Vote.objects.get_vote_or_unsaved_blank_vote(movie=movie, user=user)
        self.assertIsNone(blank.pk)
        saved = Vote.objects.create(user=user, movie=movie, value=Vote.UP)
        self.assertEqual(Vote.objects.get_vote_or_unsaved_blank_vote(movie=movie, user=user), saved)


class UploadNameTests(TestCase):
    def test_generated_name_is_uuid_with_extension(self):
        name = movie_directory_path_with_uuid(None, "My Poster.JPG")
        self.assertRegex(name, r"^movie_images/[0-9a-f]{32}\.jpg$")

    def test_names_never_collide(self):
        names = {movie_directory_path_with_uuid(None, "poster.png") for _ in range(200)}
        self.assertEqual(len(names), 200)

    def test_uploader_file_name_is_not_used(self):
        name = movie_directory_path_with_uuid(None, "../../etc/passwd.png")
        self.assertNotIn("passwd", name)
        self.assertNotIn("..", name)
        self.assertTrue(re.fullmatch(r"movie_images/[0-9a-f]{32}\.png", name))

    def test_odd_extension_is_dropped(self):
        self.assertRegex(movie_directory_path_with_uuid(None, "x.p g"), r"^movie_images/[0-9a-f]{32}$")
        self.assertRegex(movie_directory_path_with_uuid(None, "noext"), r"^movie_images/[0-9a-f]{32}$")
