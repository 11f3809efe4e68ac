from io import StringIO

from django.core.management import call_command
from django.test import TestCase

from core.models import Movie, Person, Role

from .helpers import make_movie


def run(*args):
    out = StringIO()
    call_command("load_sample_catalogue", *args, stdout=out)
    return out.getvalue()


def counts():
    return (
        Movie.objects.count(),
        Person.objects.count(),
        Role.objects.count(),
        Movie.writers.through.objects.count(),
    )


class LoadSampleCatalogueTests(TestCase):
    def test_loads_films_with_credits(self):
        output = run()
        self.assertIn("Sample catalogue loaded", output)
        self.assertGreaterEqual(Movie.objects.count(), 12)
        self.assertLessEqual(Movie.objects.count(), 20)
        godfather = Movie.objects.get(title="The Godfather")
        self.assertEqual((godfather.year, godfather.runtime, godfather.rating), (1972, 175, Movie.RATED_R))
        self.assertEqual(str(godfather.director), "Francis Ford Coppola")
        self.assertIn("Mario Puzo", [str(w) for w in godfather.writers.all()])
        self.assertTrue(godfather.role_set.filter(name="Michael Corleone", person__last_name="Pacino").exists())
        for movie in Movie.objects.all():
            self.assertTrue(movie.director_id, movie)
            self.assertTrue(movie.writers.exists(), movie)
            self.assertTrue(movie.role_set.exists(), movie)

    def test_idempotent(self):
        run()
        before = counts()
        output = run()
        self.assertEqual(counts(), before)
        self.assertIn("nothing new created", output)

    def test_if_empty_skips_when_any_movie_exists(self):
        make_movie("Already Here")
        output = run("--if-empty")
        self.assertIn("nothing loaded", output)
        self.assertEqual(Movie.objects.count(), 1)

    def test_if_empty_loads_into_an_empty_database(self):
        run("--if-empty")
        self.assertGreaterEqual(Movie.objects.count(), 12)
