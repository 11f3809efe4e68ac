import datetime
import io

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile

from core.models import Movie, Person


def make_person(first="Ada", last="Example", born=datetime.date(1950, 1, 1), died=None):
    return Person.objects.create(first_name=first, last_name=last, born=born, died=died)


def make_movie(title="Test Movie", year=2000, **extra):
    fields = {"plot": "A plot.", "rating": Movie.RATED_PG, "runtime": 100}
    fields.update(extra)
    return Movie.objects.create(title=title, year=year, **fields)


def make_user(username="alice", password="a-long-test-password-1"):
    return get_user_model().objects.create_user(username=username, password=password)


def png_upload(name="poster.png", size=(4, 6), color=(200, 30, 30)):
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")
