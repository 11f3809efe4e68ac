"""WSGI entry point used by uWSGI (module = config.wsgi:application)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.production_settings")

application = get_wsgi_application()
