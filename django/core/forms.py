from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat

from .models import MovieImage, Vote


class VoteForm(forms.ModelForm):
    """Only the value is submitted (buttons name="value" value="1"/"-1"); the user and the
    movie come from the request and the URL."""

    class Meta:
        model = Vote
        fields = ("value",)


class MovieImageForm(forms.ModelForm):
    class Meta:
        model = MovieImage
        fields = ("image",)
        labels = {"image": "Poster image"}
        widgets = {"image": forms.ClearableFileInput(attrs={"accept": "image/*"})}

    def clean_image(self):
        image = self.cleaned_data["image"]
        limit = settings.MYMDB_MAX_POSTER_BYTES
        if image and image.size > limit:
            raise forms.ValidationError(f"Posters may be at most {filesizeformat(limit)}.")
        return image
