import django
from django.contrib import admin
from django.db import models

from .models import Movie, MovieImage, Person, Role, Vote


class RoleInline(admin.TabularInline):
    model = Role
    extra = 1
    autocomplete_fields = ("person",)


@admin.register(Person)
class PersonAdmin(admin.ModelAdmin):
    list_display = ("last_name", "first_name", "born", "died")
    search_fields = ("first_name", "last_name")


@admin.register(Movie)
class MovieAdmin(admin.ModelAdmin):
    list_display = ("title", "year", "rating", "runtime", "director")
    list_filter = ("rating", "year")
    search_fields = ("title",)
    autocomplete_fields = ("director", "writers")
    inlines = (RoleInline,)
    if django.VERSION >= (5, 0):
        # Django 5 deprecates the implicit "http://" for scheme-less URLs typed into forms.
        formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ("movie", "person", "name")
    search_fields = ("name", "movie__title", "person__last_name")
    autocomplete_fields = ("movie", "person")


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ("movie", "user", "value", "voted_on")
    list_filter = ("value",)


@admin.register(MovieImage)
class MovieImageAdmin(admin.ModelAdmin):
    list_display = ("image", "movie", "user", "uploaded")
