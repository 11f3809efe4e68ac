"""The schema changes of a release, run once per deploy before the new version takes traffic
(a one-off container of the new image; web containers of a deployed stack do not migrate when
they start). Waits for the database (bounded), then applies the migrations and makes the
database cache table when the database is the cache. Exit code 1 when a migration fails: each
migration is one transaction, so the database is as far as the migrations before it got."""
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection


class Command(BaseCommand):
    help = "Applies the migrations of this version (once per deploy, before it takes traffic)."

    def add_arguments(self, parser):
        parser.add_argument("--wait", type=int, default=60, help="seconds to wait for the database (default 60)")

    def handle(self, *args, **options):
        deadline = time.monotonic() + options["wait"]
        while True:
            try:
                connection.ensure_connection()
                break
            except OperationalError as e:
                if time.monotonic() >= deadline:
                    raise CommandError(f"the database is not reachable after {options['wait']} s: {e}")
                time.sleep(1)
        call_command("migrate", interactive=False, verbosity=options["verbosity"])
        call_command("createcachetable", verbosity=options["verbosity"])
