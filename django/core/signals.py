"""Drop cached parts when what they show changes, so a vote or a poster shows up at once
(core/caching.py): any vote drops the top-10 list; a vote, a poster, a role or an edit of the
movie drops that movie's cached page; a vote also drops its user's cached vote; a save or delete of
a user drops that user's cached login."""
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .caching import invalidate_movie, invalidate_top_movies, invalidate_user, invalidate_user_vote
from .models import Movie, MovieImage, Role, Vote


@receiver(post_save, sender=Vote, dispatch_uid="core_vote_saved_invalidate")
@receiver(post_delete, sender=Vote, dispatch_uid="core_vote_deleted_invalidate")
def vote_changed(sender, instance, **kwargs):
    invalidate_top_movies()
    invalidate_movie(instance.movie_id)
    invalidate_user_vote(instance.movie_id, instance.user_id)


@receiver(post_save, sender=MovieImage, dispatch_uid="core_poster_saved_invalidate")
@receiver(post_delete, sender=MovieImage, dispatch_uid="core_poster_deleted_invalidate")
@receiver(post_save, sender=Role, dispatch_uid="core_role_saved_invalidate")
@receiver(post_delete, sender=Role, dispatch_uid="core_role_deleted_invalidate")
def part_of_movie_changed(sender, instance, **kwargs):
    invalidate_movie(instance.movie_id)


@receiver(post_save, sender=Movie, dispatch_uid="core_movie_saved_invalidate")
@receiver(post_delete, sender=Movie, dispatch_uid="core_movie_deleted_invalidate")
def movie_changed(sender, instance, **kwargs):
    invalidate_movie(instance.pk)


@receiver(post_save, sender=get_user_model(), dispatch_uid="core_user_saved_invalidate")
@receiver(post_delete, sender=get_user_model(), dispatch_uid="core_user_deleted_invalidate")
def user_changed(sender, instance, **kwargs):
    invalidate_user(instance.pk)
