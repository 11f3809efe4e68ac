import io

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import filesizeformat
from PIL import Image, ImageOps

from .models import MovieImage, Vote

# What a poster is saved as: the format Pillow found, written again by Pillow. Other formats
# (TIFF, BMP, ICO, ...) are refused; an animated GIF or WebP keeps its first frame only.
POSTER_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}


class VoteForm(forms.ModelForm):
    """Only the value is submitted (buttons name="value" value="1"/"-1"); the user and the
    movie come from the request and the URL."""

    class Meta:
        model = Vote
        fields = ("value",)


def reencoded_poster(upload, max_pixels):
    """The upload written again by Pillow: only the pixels, turned upright as its EXIF orientation
    says, without EXIF (camera, GPS), XMP, ICC or comments. Its size is read from the header
    before any pixel is decoded: width x height over max_pixels is refused, so a small file that
    expands to gigabytes (a 13,000 x 13,000 PNG) is never decoded, here or in a browser."""
    try:
        upload.seek(0)
        image = Image.open(upload)
        kind = image.format
        width, height = image.size
    except Exception as e:  # Pillow raises many kinds for files that are not images
        raise forms.ValidationError("Upload a valid image.") from e
    if kind not in POSTER_FORMATS:
        raise forms.ValidationError(f"Posters may be JPEG, PNG, GIF or WebP images (this one is {kind}).")
    if width * height > max_pixels:
        raise forms.ValidationError(
            f"Posters may have at most {max_pixels / 1e6:g} million pixels (this one is {width} x {height})."
        )
    try:
        image = ImageOps.exif_transpose(image)
        # Pillow writes what image.info holds (a JPEG's comment, a WebP's EXIF and ICC profile):
        # only a transparent colour is kept.
        image.info = {k: v for k, v in image.info.items() if k == "transparency"}
        if kind == "JPEG" and image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        out = io.BytesIO()
        image.save(out, format=kind)
    except Exception as e:
        raise forms.ValidationError("Upload a valid image.") from e
    stem = (upload.name or "poster").rsplit(".", 1)[0]
    return SimpleUploadedFile(f"{stem}.{POSTER_FORMATS[kind]}", out.getvalue(), content_type=Image.MIME[kind])


class MovieImageForm(forms.ModelForm):
    class Meta:
        model = MovieImage
        fields = ("image",)
        labels = {"image": "Poster image"}
        widgets = {"image": forms.ClearableFileInput(attrs={"accept": "image/*"})}

    def clean_image(self):
        image = self.cleaned_data["image"]
        limit = settings.MYMDB_MAX_POSTER_BYTES
        if not image:
            return image
        if image.size > limit:
            raise forms.ValidationError(f"Posters may be at most {filesizeformat(limit)}.")
        return reencoded_poster(image, settings.MYMDB_MAX_POSTER_PIXELS)
