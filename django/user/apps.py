from django.apps import AppConfig


class UserConfig(AppConfig):
    name = "user"
    verbose_name = "MyMDB accounts"
