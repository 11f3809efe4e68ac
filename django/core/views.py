from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import cache_page, never_cache
from django.views.decorators.vary import vary_on_cookie
from django.views.generic import DetailView, ListView

from .caching import anonymous_page, get_top_movies, movie_article, user_vote
from .forms import MovieImageForm, VoteForm
from .middleware import health_response
from .models import Movie, Person, Vote


@never_cache
def healthz(request):
    """Reached only if HealthCheckMiddleware is missing; same answer."""
    return health_response()


# ---------------------------------------------------------------------------------------------
# Movies
# ---------------------------------------------------------------------------------------------
# Cached per URL (so per ?page=) and per Cookie header (so per session), for
# CACHE_MIDDLEWARE_SECONDS (the same value as the cache's TIMEOUT in our settings).
# cache_page must be the outer decorator so it sees the Vary: Cookie header when storing.
# @anonymous_page: nginx may also keep the page for anonymous visitors (core/caching.py).
@method_decorator(anonymous_page, name="dispatch")
@method_decorator(cache_page(None), name="dispatch")
@method_decorator(vary_on_cookie, name="dispatch")
class MovieList(ListView):
    model = Movie
    paginate_by = 10
    template_name = "core/movie_list.html"


@method_decorator(anonymous_page, name="dispatch")
class TopMovies(ListView):
    template_name = "core/top_movies_list.html"
    context_object_name = "top_movies"

    def get_queryset(self):
        return get_top_movies(limit=10)


def movie_detail_context(request, movie_id, image_form=None):
    """The movie's cached part (core/caching.py movie_article) and the visitor's: their vote and,
    after a refused upload, the poster form with its errors (the forms themselves are plain HTML)."""
    article = movie_article(movie_id)
    context = {"article": article}
    if request.user.is_authenticated:
        vote = user_vote(article["pk"], request.user)
        if vote.pk:
            vote_form_url = reverse(
                "core:update_vote", kwargs={"movie_id": article["pk"], "pk": vote.pk}
            )
        else:
            vote_form_url = reverse("core:create_vote", kwargs={"movie_id": article["pk"]})
        context["vote"] = vote
        context["vote_form_url"] = vote_form_url
        context["image_form"] = image_form
    return context


@method_decorator(anonymous_page, name="dispatch")
class MovieDetail(View):
    http_method_names = ["get", "head"]

    def get(self, request, pk):
        return render(request, "core/movie_detail.html", movie_detail_context(request, pk))


# ---------------------------------------------------------------------------------------------
# Votes (POST only; anonymous users are sent to the login page)
# ---------------------------------------------------------------------------------------------
class CreateVote(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        # A second "create" by the same user (e.g. two tabs) updates their vote instead.
        vote = Vote.objects.get_vote_or_unsaved_blank_vote(movie=movie, user=request.user)
        form = VoteForm(data=request.POST, instance=vote)
        if not form.is_valid():
            return HttpResponseBadRequest("Invalid vote: value must be 1 or -1.")
        form.save()
        return redirect(movie)


class UpdateVote(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, movie_id, pk):
        vote = get_object_or_404(Vote, pk=pk, movie_id=movie_id)
        if vote.user_id != request.user.pk:
            raise PermissionDenied("You can only change your own vote.")
        form = VoteForm(data=request.POST, instance=vote)
        if not form.is_valid():
            return HttpResponseBadRequest("Invalid vote: value must be 1 or -1.")
        form.save()
        return redirect(vote.movie)


# ---------------------------------------------------------------------------------------------
# Posters
# ---------------------------------------------------------------------------------------------
class MovieImageUpload(LoginRequiredMixin, View):
    http_method_names = ["post"]

    def post(self, request, movie_id):
        movie = get_object_or_404(Movie, pk=movie_id)
        form = MovieImageForm(data=request.POST, files=request.FILES)
        if not form.is_valid():
            context = movie_detail_context(request, movie_id, image_form=form)
            return render(request, "core/movie_detail.html", context, status=400)
        image = form.save(commit=False)
        image.movie = movie
        image.user = request.user
        image.save()
        return redirect(movie)


# ---------------------------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------------------------
@method_decorator(anonymous_page, name="dispatch")
class PersonDetail(DetailView):
    queryset = Person.objects.all_with_prefetch_movies()
    template_name = "core/person_detail.html"
