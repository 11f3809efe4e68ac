import os
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Sum


# ---------------------------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------------------------
class PersonManager(models.Manager):
    def all_with_prefetch_movies(self):
        return self.get_queryset().prefetch_related(
            "directed", "writing_credits", "role_set__movie"
        )


class Person(models.Model):
    first_name = models.CharField(max_length=140)
    last_name = models.CharField(max_length=140)
    born = models.DateField()
    died = models.DateField(null=True, blank=True)

    objects = PersonManager()

    class Meta:
        ordering = ("last_name", "first_name")

    def __str__(self):
        return f"{self.first_name} {self.last_name}"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("core:person_detail", kwargs={"pk": self.pk})


# ---------------------------------------------------------------------------------------------
# Movies
# ---------------------------------------------------------------------------------------------
class MovieManager(models.Manager):
    def all_with_related_persons(self):
        return (
            self.get_queryset()
            .select_related("director")
            .prefetch_related("writers", "role_set__person")
        )

    def all_with_related_persons_and_score(self):
        # Sum over votes only (writers/actors are prefetched, not joined, so no double count).
        return self.all_with_related_persons().annotate(score=Sum("vote__value"))

    def top_movies(self, limit=10):
        return (
            self.get_queryset()
            .annotate(score=Sum("vote__value"))
            .exclude(score=None)
            .order_by("-score", "title", "pk")[:limit]
        )


class Movie(models.Model):
    NOT_RATED = 0
    RATED_G = 1
    RATED_PG = 2
    RATED_R = 3
    RATINGS = (
        (NOT_RATED, "NR - Not Rated"),
        (RATED_G, "G - General Audiences"),
        (RATED_PG, "PG - Parental Guidance Suggested"),
        (RATED_R, "R - Restricted"),
    )

    title = models.CharField(max_length=140)
    plot = models.TextField()
    year = models.PositiveIntegerField()
    rating = models.IntegerField(choices=RATINGS, default=NOT_RATED)
    runtime = models.PositiveIntegerField(help_text="minutes")
    website = models.URLField(blank=True)
    director = models.ForeignKey(
        Person, on_delete=models.SET_NULL, related_name="directed", null=True, blank=True
    )
    writers = models.ManyToManyField(Person, related_name="writing_credits", blank=True)
    actors = models.ManyToManyField(
        Person, through="Role", related_name="acting_credits", blank=True
    )

    objects = MovieManager()

    class Meta:
        ordering = ("-year", "title")

    def __str__(self):
        return f"{self.title} ({self.year})"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("core:movie_detail", kwargs={"pk": self.pk})

    def get_score(self):
        return self.vote_set.aggregate(score=Sum("value"))["score"] or 0


class Role(models.Model):
    """An actor's part in a movie. Unique on (movie, person, name): one actor may play several
    parts in the same film, but the same part is not listed twice."""

    movie = models.ForeignKey(Movie, on_delete=models.CASCADE)
    person = models.ForeignKey(Person, on_delete=models.CASCADE)
    name = models.CharField(max_length=140)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["movie", "person", "name"], name="unique_role_per_movie_person_name"
            )
        ]
        ordering = ("movie", "pk")

    def __str__(self):
        return f"{self.movie_id} {self.person_id} {self.name}"


# ---------------------------------------------------------------------------------------------
# Votes
# ---------------------------------------------------------------------------------------------
class VoteManager(models.Manager):
    def get_vote_or_unsaved_blank_vote(self, movie, user):
        try:
            return self.get(movie=movie, user=user)
        except self.model.DoesNotExist:
            return self.model(movie=movie, user=user)


class Vote(models.Model):
    UP = 1
    DOWN = -1
    VALUE_CHOICES = ((UP, "Up"), (DOWN, "Down"))

    value = models.SmallIntegerField(choices=VALUE_CHOICES)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE)
    voted_on = models.DateTimeField(auto_now=True)

    objects = VoteManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "movie"], name="one_vote_per_user_per_movie"),
        ]

    def __str__(self):
        return f"{self.user} {self.get_value_display()} {self.movie}"


# ---------------------------------------------------------------------------------------------
# Posters
# ---------------------------------------------------------------------------------------------
def movie_directory_path_with_uuid(instance, filename):
    """movie_images/<uuid4 hex><.ext>: never collides, and ignores the uploader's file name
    (apart from a lower-cased, sanitised extension)."""
    ext = os.path.splitext(filename)[1].lower()
    if not ext[1:].isalnum() or len(ext) > 6:
        ext = ""
    return f"movie_images/{uuid.uuid4().hex}{ext}"


class MovieImage(models.Model):
    image = models.ImageField(upload_to=movie_directory_path_with_uuid)
    uploaded = models.DateTimeField(auto_now_add=True)
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)

    class Meta:
        ordering = ("-uploaded", "-pk")

    def __str__(self):
        return self.image.name
