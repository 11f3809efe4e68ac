"""Low-level caching of the top-10 list (timeout: the cache backend's TIMEOUT setting)."""
from django.core.cache import cache

TOP_MOVIES_CACHE_KEY = "core:top_movies"


def get_top_movies(limit=10):
    from .models import Movie

    movies = cache.get(TOP_MOVIES_CACHE_KEY)
    if movies is None:
        movies = list(Movie.objects.top_movies(limit=limit))
        cache.set(TOP_MOVIES_CACHE_KEY, movies)
    return movies


def invalidate_top_movies():
    cache.delete(TOP_MOVIES_CACHE_KEY)
