"""What MyMDB caches, and for whom.

- Anonymous pages: views marked @anonymous_page may be kept by nginx (uwsgi_cache, see
  nginx/mymdb.conf.template) for CACHE_MIDDLEWARE_SECONDS, through the X-Accel-Expires header that
  AnonymousPageMiddleware adds and nginx removes. Only a 200 answer to a GET or HEAD without a
  session cookie, from an anonymous user, that sets no cookie and is not private. nginx itself
  never stores or answers from the cache when the request carries a session cookie, so a logged-in
  user always sees the site as it is now, their own vote included.
- In Django's cache (the same for all processes), each dropped at once when what it shows changes
  (core.signals), else kept for the cache's TIMEOUT:
  - the top-10 list (a query over every vote): dropped by any vote;
  - a movie's page without the visitor's part (movie_article: title, credits, score, posters):
    dropped by a vote on it, a poster of it, or a change of the movie or its cast. A renamed
    person shows on the movie's page after the TIMEOUT;
  - a user's vote on a movie (user_vote): dropped by a change of that vote;
  - a logged-in visitor's user (session_user, for core.middleware.CachedAuthenticationMiddleware):
    dropped by any save or delete of that user (a new password, a deactivation, a new name). A
    change that bypasses signals (QuerySet.update) shows after the TIMEOUT, as with the sessions
    themselves (cached_db). The cached user is the whole row, its password hash included (code may
    check or change a password on request.user): memcached is on the internal network only, next
    to the database that holds the same.
  Each is kept under a generation (generation_key) that its invalidation drops: what a request
  computed from data read before a change is never kept as the current value after it.
"""
import logging
import secrets
import time
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.memcached import PyMemcacheCache
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils.cache import patch_cache_control

TOP_MOVIES_CACHE_KEY = "core:top_movies"
MOVIE_ARTICLE_KEY = "core:movie:{}"
USER_VOTE_KEY = "core:vote:{}:{}"  # movie, user
USER_KEY = "core:user:{}"
ANONYMOUS_PAGE = "mymdb_anonymous_page"
NGINX_CACHE_HEADER = "X-Accel-Expires"

logger = logging.getLogger(__name__)


class MemcachedCache(PyMemcacheCache):
    """Django's PyMemcacheCache, keeping its connection to memcached from one request to the next.

    Django closes every cache at the end of each request (request_finished), and PyMemcacheCache's
    close() drops the connection: each request then looked the cache service up in DNS and
    connected again, about 1 ms of a logged-in page. Django keeps one instance per thread, so each
    uWSGI thread keeps one connection; pymemcache drops a broken one and connects again on the
    next call (a cache restart costs misses, not errors).
    """

    def close(self, **kwargs):
        pass

    def delete(self, key, version=None):
        """Every delete is an invalidation (a generation dropped by core.signals, a session ended
        by a logout), so it must reach memcached. pymemcache's HashClient, after a command failed
        on this thread's connection (a 0.5 s timeout on a busy machine), answers every command as
        a miss for a while without sending it: harmless for a read, but a delete skipped so leaves
        the old page (without the new poster or vote) for the cache's TIMEOUT, or a logged-out
        session valid. So a delete goes to each server's own client, waits for memcached's
        answer, and is tried 3 times; one that still fails is logged."""
        from pymemcache.exceptions import MemcacheError

        key = self.make_and_validate_key(key, version=version)
        error = None
        for attempt in range(3):
            try:
                return any([client.delete(key, noreply=False) for client in self._cache.clients.values()])
            except (OSError, MemcacheError) as e:
                error = e
                time.sleep(0.05 * (attempt + 1))
        logger.error("could not drop %s from memcached (%s): its page may show old data for up to %s s", key, error, self.default_timeout)
        return False


def caching_off():
    """DJANGO_CACHE_TIMEOUT=0 (the cache's TIMEOUT 0): nothing is read from or written to it."""
    return cache.default_timeout == 0


def generation_key(key):
    """Where the value of key is kept now: "<key>:<generation>", the generation a random token
    kept (without expiry) under "<key>:gen" and dropped by invalidate(); None when the cache does
    not answer. A request that read the data before a change and stores what it computed after
    the change was invalidated stores it under the generation it read, which nobody asks for
    any more: a slow request never brings the old page back."""
    gen_key = f"{key}:gen"
    gen = cache.get(gen_key)
    if gen is None:
        cache.add(gen_key, secrets.token_hex(6), timeout=None)
        gen = cache.get(gen_key)
    return f"{key}:{gen}" if gen is not None else None


def invalidate(key):
    """Drops key's value: its generation goes (MemcachedCache.delete: never skipped)."""
    cache.delete(f"{key}:gen")


def cached(key, compute):
    """The value kept under key, or compute()'s, kept for the cache's TIMEOUT; compute() every
    time with caching off or the cache not answering."""
    current = None if caching_off() else generation_key(key)
    if current is None:
        return compute()
    return cache.get_or_set(current, compute)


def get_top_movies(limit=10):
    from .models import Movie

    return cached(TOP_MOVIES_CACHE_KEY, lambda: list(Movie.objects.top_movies(limit=limit)))


def invalidate_top_movies():
    invalidate(TOP_MOVIES_CACHE_KEY)


def movie_article(movie_id):
    """{"pk", "title", "html"}: the movie's page without the visitor's part; Http404 if none."""
    from .models import Movie

    def render():
        movie = get_object_or_404(Movie.objects.all_with_related_persons_and_score(), pk=movie_id)
        context = {"movie": movie, "posters": list(movie.movieimage_set.all()), "score": movie.score or 0}
        html = render_to_string("core/_movie_article.html", context)
        return {"pk": movie.pk, "title": movie.title, "html": str(html)}

    return cached(MOVIE_ARTICLE_KEY.format(int(movie_id)), render)


def invalidate_movie(movie_id):
    invalidate(MOVIE_ARTICLE_KEY.format(int(movie_id)))


def user_vote(movie_id, user):
    """The user's vote on the movie: a Vote with its pk and value, or an unsaved blank one."""
    from .models import Vote

    def lookup():
        vote = Vote.objects.filter(movie_id=movie_id, user=user).first()
        return (vote.pk, vote.value) if vote else (None, None)

    pk, value = cached(USER_VOTE_KEY.format(int(movie_id), user.pk), lookup)
    if pk is None:
        return Vote(movie_id=movie_id, user=user)
    return Vote(pk=pk, movie_id=movie_id, user=user, value=value)


def invalidate_user_vote(movie_id, user_id):
    invalidate(USER_VOTE_KEY.format(int(movie_id), int(user_id)))


def session_user(request):
    """The request's user, as django.contrib.auth.get_user() gives it, without a database query
    when this user's login was checked before: the cache keeps, per user, the user and the login
    it was checked against (the session's backend and password hash, and the secret key they
    were checked with). A session with any other login, a new secret key, or a user saved or
    deleted since, goes through get_user() again, which checks the backend, that the user may log
    in, and the password hash (and logs a stale session out, unless an old key in
    SECRET_KEY_FALLBACKS vouches for it)."""
    from django.contrib import auth
    from django.utils.crypto import salted_hmac

    user_id = request.session.get(auth.SESSION_KEY)
    key = None if user_id is None or caching_off() else generation_key(USER_KEY.format(user_id))
    if key is None:
        return auth.get_user(request)

    def login():
        key_id = salted_hmac("core.caching.session_user", "secret key", algorithm="sha256").hexdigest()[:16]
        return (request.session.get(auth.BACKEND_SESSION_KEY), request.session.get(auth.HASH_SESSION_KEY), key_id)

    kept = cache.get(key)
    if kept is not None and kept[0] == login():
        return kept[1]
    user = auth.get_user(request)
    if user.is_authenticated:
        cache.set(key, (login(), user))  # get_user() may have renewed the session's hash
    return user


def invalidate_user(user_id):
    invalidate(USER_KEY.format(user_id))


def anonymous_page(view):
    """Marks the view's pages as the same for every anonymous visitor (see the module's doc)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        setattr(response, ANONYMOUS_PAGE, True)
        return response

    return wrapped


def personal(request):
    """True when the request comes with a session or from a logged-in user."""
    user = getattr(request, "user", None)
    return settings.SESSION_COOKIE_NAME in request.COOKIES or bool(user is not None and user.is_authenticated)


def shareable(request, response):
    """True when nginx may give this response to other anonymous visitors."""
    if not getattr(response, ANONYMOUS_PAGE, False) or settings.CACHE_MIDDLEWARE_SECONDS <= 0:
        return False
    if request.method not in ("GET", "HEAD") or response.status_code != 200 or response.cookies:
        return False
    if personal(request):
        return False
    cache_control = response.get("Cache-Control", "").lower()
    return "private" not in cache_control and "no-store" not in cache_control


class AnonymousPageMiddleware:
    """Adds X-Accel-Expires to shareable anonymous pages. Second in MIDDLEWARE, right after the
    health check, so it sees the response last: after every cookie the others may set."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if shareable(request, response):
            response[NGINX_CACHE_HEADER] = str(settings.CACHE_MIDDLEWARE_SECONDS)
        elif personal(request):
            # A logged-in visitor's page (their vote, their name): for their browser only, never
            # for a shared cache between them and the site, whatever max-age a view gave it.
            patch_cache_control(response, private=True)
        return response
