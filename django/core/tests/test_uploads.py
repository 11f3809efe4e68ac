import shutil
import tempfile
from pathlib import Path

from django.core.cache import cache
from django.test import TestCase, override_settings

from core.models import MovieImage

from .helpers import make_movie, make_user, png_upload


class UploadTests(TestCase):
    """Uploads go to a throwaway directory, whatever storage the settings name."""

    def setUp(self):
        cache.clear()
        self.media_root = tempfile.mkdtemp(prefix="mymdb-test-media-")
        self.addCleanup(shutil.rmtree, self.media_root, ignore_errors=True)
        storage_override = override_settings(
            MEDIA_ROOT=self.media_root,
            STORAGES={
                "default": {
                    "BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": self.media_root, "base_url": "/media/"},
                },
                "staticfiles": {
                    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
                },
            },
        )
        storage_override.enable()
        self.addCleanup(storage_override.disable)
        self.movie = make_movie("Poster Movie")
        self.user = make_user()

    def test_poster_is_stored_and_shown(self):
        self.client.force_login(self.user)
        response = self.client.post(
            f"/movie/{self.movie.pk}/image/upload", {"image": png_upload("My Poster.PNG")}
        )
        self.assertRedirects(response, f"/movie/{self.movie.pk}/")
        image = MovieImage.objects.get()
        self.assertEqual((image.movie, image.user), (self.movie, self.user))
        self.assertRegex(image.image.name, r"^movie_images/[0-9a-f]{32}\.png$")
        stored = Path(self.media_root) / image.image.name
        self.assertTrue(stored.is_file())
        page = self.client.get(f"/movie/{self.movie.pk}/")
        self.assertContains(page, f'src="/media/{image.image.name}"')

    def test_two_uploads_with_the_same_name_do_not_collide(self):
        self.client.force_login(self.user)
        for _ in range(2):
            self.client.post(f"/movie/{self.movie.pk}/image/upload", {"image": png_upload("same.png")})
        names = list(MovieImage.objects.values_list("image", flat=True))
        self.assertEqual(len(set(names)), 2)
        self.assertEqual(len(list(Path(self.media_root, "movie_images").iterdir())), 2)

    def test_anonymous_cannot_upload(self):
        response = self.client.post(f"/movie/{self.movie.pk}/image/upload", {"image": png_upload()})
        self.assertEqual(response.status_code, 302)
        self.assertTrue(response["Location"].startswith("/user/login"))
        self.assertFalse(MovieImage.objects.exists())
        self.assertFalse(Path(self.media_root, "movie_images").exists())

    def test_non_image_is_rejected(self):
        from django.core.files.uploadedfile import SimpleUploadedFile

        self.client.force_login(self.user)
        bogus = SimpleUploadedFile("evil.png", b"<script>alert(1)</script>", content_type="image/png")
        response = self.client.post(f"/movie/{self.movie.pk}/image/upload", {"image": bogus})
        self.assertEqual(response.status_code, 400)
        self.assertContains(response, "Upload a valid image", status_code=400)
        self.assertFalse(MovieImage.objects.exists())

    @override_settings(MYMDB_MAX_POSTER_BYTES=50)
    def test_too_big_is_rejected(self):
        self.client.force_login(self.user)
        response = self.client.post(
            f"/movie/{self.movie.pk}/image/upload", {"image": png_upload(size=(64, 64))}
        )
        self.assertEqual(response.status_code, 400)
        self.assertFalse(MovieImage.objects.exists())

    @override_settings(MYMDB_MAX_POSTER_PIXELS=10_000)
    def test_too_many_pixels_is_refused_before_decoding(self):
        self.client.force_login(self.user)
        response = self.client.post(
            f"/movie/{self.movie.pk}/image/upload", {"image": png_upload(size=(200, 100))}
        )
        self.assertContains(response, "at most 0.01 million pixels (this one is 200 x 100)", status_code=400)
        self.assertFalse(MovieImage.objects.exists())

    def test_poster_is_written_again_without_metadata_and_upright(self):
        import io

        from django.core.files.uploadedfile import SimpleUploadedFile
        from PIL import Image

        exif = Image.Exif()
        exif[0x010F] = "Camera Maker"  # Make
        exif[0x0112] = 6  # Orientation: the camera was turned; shown rotated by 90 degrees
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPS: where the photo was taken
        buffer = io.BytesIO()
        Image.new("RGB", (40, 20), (10, 120, 200)).save(buffer, format="JPEG", exif=exif, comment=b"hello")
        self.assertIn(b"Camera Maker", buffer.getvalue())
        self.client.force_login(self.user)
        response = self.client.post(
            f"/movie/{self.movie.pk}/image/upload",
            {"image": SimpleUploadedFile("holiday.png", buffer.getvalue(), content_type="image/png")},
        )
        self.assertRedirects(response, f"/movie/{self.movie.pk}/")
        image = MovieImage.objects.get()
        self.assertRegex(image.image.name, r"^movie_images/[0-9a-f]{32}\.jpg$")  # the format's own extension
        stored = (Path(self.media_root) / image.image.name).read_bytes()
        self.assertNotIn(b"Camera Maker", stored)
        self.assertNotIn(b"hello", stored)
        with Image.open(io.BytesIO(stored)) as kept:
            self.assertEqual(kept.format, "JPEG")
            self.assertEqual(kept.size, (20, 40))  # turned upright
            self.assertEqual(dict(kept.getexif()), {})

    def test_other_image_formats_are_refused(self):
        import io

        from django.core.files.uploadedfile import SimpleUploadedFile
        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (4, 4)).save(buffer, format="BMP")
        self.client.force_login(self.user)
        response = self.client.post(
            f"/movie/{self.movie.pk}/image/upload",
            {"image": SimpleUploadedFile("poster.bmp", buffer.getvalue(), content_type="image/bmp")},
        )
        self.assertContains(response, "JPEG, PNG, GIF or WebP", status_code=400)
        self.assertFalse(MovieImage.objects.exists())
