"""Drop the cached top-10 list whenever a vote changes, so a fresh vote shows up at once."""
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .caching import invalidate_top_movies
from .models import Vote


@receiver(post_save, sender=Vote, dispatch_uid="core_vote_saved_invalidate_top")
@receiver(post_delete, sender=Vote, dispatch_uid="core_vote_deleted_invalidate_top")
def vote_changed(sender, **kwargs):
    invalidate_top_movies()
