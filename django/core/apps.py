from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "MyMDB catalogue"

    def ready(self):
        from . import signals  # noqa: F401  (cache invalidation on votes)
