"""production_settings.py is imported in a subprocess with a controlled environment."""
import json
import os
import subprocess
import sys

from django.conf import settings
from django.test import SimpleTestCase

REQUIRED = {
    "DJANGO_SECRET_KEY": "test-secret-key-" + "x" * 50,
    "DJANGO_ALLOWED_HOSTS": "mymdb.example.com",
    "DJANGO_DB_NAME": "mymdb",
    "DJANGO_DB_USER": "mymdb",
    "DJANGO_DB_PASSWORD": "secret",
    "DJANGO_DB_HOST": "db.example.internal",
}

DUMP = """
import json
from django.conf import settings
import config.production_settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "CSRF_TRUSTED_ORIGINS": s.CSRF_TRUSTED_ORIGINS,
    "DATABASES": s.DATABASES,
    "CACHES": s.CACHES,
    "CACHE_MIDDLEWARE_SECONDS": s.CACHE_MIDDLEWARE_SECONDS,
    "SESSION_ENGINE": getattr(s, "SESSION_ENGINE", "django.contrib.sessions.backends.db"),
    "STORAGES": s.STORAGES,
    "SILENCED_SYSTEM_CHECKS": s.SILENCED_SYSTEM_CHECKS,
    "SECURE_SSL_REDIRECT": getattr(s, "SECURE_SSL_REDIRECT", False),
    "SECURE_HSTS_SECONDS": getattr(s, "SECURE_HSTS_SECONDS", 0),
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": getattr(s, "SECURE_HSTS_INCLUDE_SUBDOMAINS", False),
    "SECURE_HSTS_PRELOAD": getattr(s, "SECURE_HSTS_PRELOAD", False),
    "SESSION_COOKIE_SECURE": getattr(s, "SESSION_COOKIE_SECURE", False),
    "CSRF_COOKIE_SECURE": getattr(s, "CSRF_COOKIE_SECURE", False),
    "SECURE_PROXY_SSL_HEADER": getattr(s, "SECURE_PROXY_SSL_HEADER", None),
    "SECURE_REDIRECT_EXEMPT": getattr(s, "SECURE_REDIRECT_EXEMPT", []),
    "X_FRAME_OPTIONS": s.X_FRAME_OPTIONS,
    "SECURE_CONTENT_TYPE_NOSNIFF": s.SECURE_CONTENT_TYPE_NOSNIFF,
    "LOG_LEVEL": s.LOGGING["root"]["level"],
    "DJANGO_LOGGER_LEVEL": s.LOGGING["loggers"]["django"]["level"],
    "LOG_HANDLER": s.LOGGING["handlers"]["stdout"]["class"],
    "STATIC_ROOT": str(s.STATIC_ROOT),
    "MEDIA_ROOT": str(s.MEDIA_ROOT),
    "ADMIN_URL": s.ADMIN_URL,
    "SECRET_KEY": s.SECRET_KEY,
    "SECRET_KEY_FALLBACKS": s.SECRET_KEY_FALLBACKS,
}))
"""


def clean_env(**overrides):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AWS_"))
    }
    env.update(overrides)
    return env


def import_settings(env):
    return subprocess.run(
        [sys.executable, "-c", DUMP],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


class ProductionSettingsTests(SimpleTestCase):
    def load(self, **overrides):
        result = import_settings(clean_env(**{**REQUIRED, **overrides}))
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def load_exact(self, **env):
        result = import_settings(clean_env(**env))
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def fail_with(self, env):
        result = import_settings(env)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("ImproperlyConfigured", result.stderr)
        return result.stderr

    def test_missing_variables_are_all_named_at_once(self):
        stderr = self.fail_with(clean_env())
        for name in REQUIRED:
            self.assertIn(name, stderr)

    def test_blank_values_count_as_missing(self):
        stderr = self.fail_with(clean_env(**{**REQUIRED, "DJANGO_SECRET_KEY": "  ", "DJANGO_ALLOWED_HOSTS": " , ,"}))
        self.assertIn("DJANGO_SECRET_KEY", stderr)
        self.assertIn("DJANGO_ALLOWED_HOSTS", stderr)
        self.assertNotIn("DJANGO_DB_NAME", stderr)

    def test_invalid_optional_values_are_named_with_missing_ones(self):
        env = clean_env(
            DJANGO_CACHE_TIMEOUT="soon",
            DJANGO_DB_PORT="fivefourthreetwo",
            DJANGO_SECURE_SSL="maybe",
            DJANGO_LOG_LEVEL="LOUD",
        )
        stderr = self.fail_with(env)
        for name in (*REQUIRED, "DJANGO_CACHE_TIMEOUT", "DJANGO_DB_PORT", "DJANGO_SECURE_SSL", "DJANGO_LOG_LEVEL"):
            self.assertIn(name, stderr)

    def test_secrets_from_files(self):
        """Docker's convention: <NAME>_FILE names a file (a Swarm secret) holding the value."""
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            def write(name, text):
                path = os.path.join(d, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                return path

            env = {k: v for k, v in REQUIRED.items() if k not in ("DJANGO_SECRET_KEY", "DJANGO_DB_PASSWORD")}
            loaded = self.load_exact(
                **env,
                DJANGO_SECRET_KEY_FILE=write("key", "from-a-file-" + "k" * 50 + "\n"),
                DJANGO_DB_PASSWORD_FILE=write("pw", "file-pw\n"),
                DJANGO_SECRET_KEY_FALLBACKS_FILE=write("old", "old-key-one\nold-key-two\n"),
            )
            self.assertEqual(loaded["SECRET_KEY"], "from-a-file-" + "k" * 50)
            self.assertEqual(loaded["DATABASES"]["default"]["PASSWORD"], "file-pw")
            self.assertEqual(loaded["SECRET_KEY_FALLBACKS"], ["old-key-one", "old-key-two"])
            # the upload keys' secret half too (boto3 reads no _FILE: the storage gets both keys)
            uploads = self.load(
                DJANGO_UPLOAD_S3_BUCKET="b",
                AWS_ACCESS_KEY_ID="upload-id",
                AWS_SECRET_ACCESS_KEY_FILE=write("aws", "upload-secret\n"),
            )["STORAGES"]["default"]["OPTIONS"]
            self.assertEqual((uploads["access_key"], uploads["secret_key"]), ("upload-id", "upload-secret"))
            self.assertNotIn("secret_key", self.load(DJANGO_UPLOAD_S3_BUCKET="b")["STORAGES"]["default"]["OPTIONS"])
            # both ways at once, a file that is not there, an empty file: named, with the rest
            stderr = self.fail_with(
                clean_env(
                    **env,
                    DJANGO_SECRET_KEY="x" * 50,
                    DJANGO_SECRET_KEY_FILE=write("key2", "y" * 50),
                    DJANGO_DB_PASSWORD_FILE=os.path.join(d, "missing"),
                    DJANGO_SECRET_KEY_FALLBACKS_FILE=write("empty", ""),
                )
            )
            self.assertIn("DJANGO_SECRET_KEY and DJANGO_SECRET_KEY_FILE (set one of them, not both)", stderr)
            self.assertIn("DJANGO_DB_PASSWORD_FILE (cannot read", stderr)
            self.assertNotIn("DJANGO_SECRET_KEY_FALLBACKS", stderr)
        self.assertEqual(self.load()["SECRET_KEY_FALLBACKS"], [])
        self.assertEqual(self.load(DJANGO_SECRET_KEY_FALLBACKS="a b")["SECRET_KEY_FALLBACKS"], ["a", "b"])

    def test_allowed_hosts_comma_separated(self):
        loaded = self.load(DJANGO_ALLOWED_HOSTS=" a.example.com, b.example.com ,,localhost, ")
        self.assertEqual(loaded["ALLOWED_HOSTS"], ["a.example.com", "b.example.com", "localhost"])

    def test_defaults(self):
        loaded = self.load()
        self.assertFalse(loaded["DEBUG"])
        db = loaded["DATABASES"]["default"]
        self.assertEqual(db["ENGINE"], "django.db.backends.postgresql")
        self.assertEqual(db["OPTIONS"], {"connect_timeout": 5})
        self.assertEqual(
            (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]),
            ("mymdb", "mymdb", "secret", "db.example.internal", "5432"),
        )
        cache_conf = loaded["CACHES"]["default"]
        self.assertEqual(cache_conf["BACKEND"], "django.core.cache.backends.db.DatabaseCache")
        self.assertEqual(cache_conf["LOCATION"], "mymdb_cache")
        self.assertEqual(cache_conf["TIMEOUT"], 60)
        self.assertEqual(loaded["CACHE_MIDDLEWARE_SECONDS"], 60)
        self.assertEqual(loaded["LOG_LEVEL"], "INFO")
        self.assertEqual(loaded["LOG_HANDLER"], "logging.StreamHandler")
        self.assertEqual(loaded["CSRF_TRUSTED_ORIGINS"], [])
        self.assertEqual(loaded["X_FRAME_OPTIONS"], "DENY")
        self.assertTrue(loaded["SECURE_CONTENT_TYPE_NOSNIFF"])
        self.assertEqual(
            loaded["STORAGES"]["default"]["BACKEND"], "django.core.files.storage.FileSystemStorage"
        )
        self.assertTrue(loaded["STATIC_ROOT"].endswith("gathered_static_files"))
        self.assertTrue(loaded["MEDIA_ROOT"].endswith("media_root"))

    def test_database_tls_verified_against_a_ca_file(self):
        ca = os.path.join(settings.BASE_DIR, "manage.py")  # any file that exists
        db = self.load(DJANGO_DB_SSLMODE="verify-full", DJANGO_DB_SSLROOTCERT=ca)["DATABASES"]["default"]
        self.assertEqual(db["OPTIONS"], {"connect_timeout": 5, "sslmode": "verify-full", "sslrootcert": ca})

    def test_database_tls_settings_that_cannot_work_are_named(self):
        stderr = self.fail_with(clean_env(**{**REQUIRED, "DJANGO_DB_SSLMODE": "verify-full"}))
        self.assertIn("DJANGO_DB_SSLROOTCERT (the CA file", stderr)
        stderr = self.fail_with(clean_env(**{**REQUIRED, "DJANGO_DB_SSLMODE": "strict", "DJANGO_DB_SSLROOTCERT": "/nonexistent/ca.pem"}))
        self.assertIn("DJANGO_DB_SSLMODE (one of disable, allow, prefer, require, verify-ca, verify-full; got 'strict')", stderr)
        self.assertIn("DJANGO_DB_SSLROOTCERT (no such file: /nonexistent/ca.pem)", stderr)

    def test_empty_cache_timeout_means_default(self):
        self.assertEqual(self.load(DJANGO_CACHE_TIMEOUT="")["CACHES"]["default"]["TIMEOUT"], 60)
        loaded = self.load(DJANGO_CACHE_TIMEOUT="300", DJANGO_DB_PORT="6543", DJANGO_LOG_LEVEL="warning")
        self.assertEqual(loaded["CACHES"]["default"]["TIMEOUT"], 300)
        self.assertEqual(loaded["CACHE_MIDDLEWARE_SECONDS"], 300)
        self.assertEqual(loaded["DATABASES"]["default"]["PORT"], "6543")
        self.assertEqual(loaded["LOG_LEVEL"], "WARNING")

    def test_cache_location_names_memcached_and_sessions_go_through_it(self):
        loaded = self.load(DJANGO_CACHE_LOCATION="cache:11211", DJANGO_CACHE_TIMEOUT="30")
        cache_conf = loaded["CACHES"]["default"]
        self.assertEqual(cache_conf["BACKEND"], "core.caching.MemcachedCache")
        self.assertEqual(cache_conf["LOCATION"], "cache:11211")
        self.assertEqual(cache_conf["TIMEOUT"], 30)
        # a cache that is down is a miss, not an error
        self.assertTrue(cache_conf["OPTIONS"]["ignore_exc"])
        self.assertEqual(loaded["SESSION_ENGINE"], "django.contrib.sessions.backends.cached_db")
        self.assertEqual(self.load()["SESSION_ENGINE"], "django.contrib.sessions.backends.db")

    def test_cached_pages_belong_to_the_release(self):
        # the keys of the cache, memcached or the database, carry the digest of this version's
        # code and templates: a new version never serves the old one's pages
        from config.release import release_digest

        prefixes = set()
        for loaded in (self.load(DJANGO_CACHE_LOCATION="cache:11211"), self.load()):
            prefixes.add(loaded["CACHES"]["default"]["KEY_PREFIX"])
        self.assertEqual(len(prefixes), 1)
        self.assertRegex(prefixes.pop(), rf"^mymdb-{release_digest()}-[0-9a-f]{{8}}$")
        # and of the secret key: after a new one no page cached under the old one is served
        self.assertNotEqual(
            self.load()["CACHES"]["default"]["KEY_PREFIX"],
            self.load(DJANGO_SECRET_KEY="another-key-" + "z" * 50)["CACHES"]["default"]["KEY_PREFIX"],
        )

    def test_the_release_digest_changes_with_a_template_or_code_and_nothing_else(self):
        import tempfile
        from pathlib import Path

        from config.release import release_digest

        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            (root / "core" / "templates").mkdir(parents=True)
            (root / "core" / "views.py").write_text("def view(): pass\n")
            (root / "core" / "templates" / "list.html").write_text("<ul></ul>\n")
            first = release_digest(root)
            self.assertRegex(first, r"^[0-9a-f]{12}$")
            (root / "notes.txt").write_text("not code")
            (root / "core" / "__pycache__").mkdir()
            (root / "core" / "__pycache__" / "views.cpython-313.pyc").write_bytes(b"\0")
            self.assertEqual(release_digest(root), first)
            (root / "core" / "templates" / "list.html").write_text("<ol></ol>\n")
            second = release_digest(root)
            self.assertNotEqual(second, first)
            (root / "core" / "views.py").write_text("def view(): return 1\n")
            self.assertNotEqual(release_digest(root), second)

    def test_a_cache_location_that_is_not_host_port_is_named(self):
        for bad in ("cache", "cache:port", "memcached://cache:11211", "cache:11211 other:1"):
            with self.subTest(bad=bad):
                stderr = self.fail_with(clean_env(**{**REQUIRED, "DJANGO_CACHE_LOCATION": bad}))
                self.assertIn("DJANGO_CACHE_LOCATION (must be host:port", stderr)

    def test_log_level_is_one_of_five_names_in_any_letter_case(self):
        # The same rule as the tasks' checker (tasks/lib/vars.ts): DEBUG, INFO, WARNING, ERROR,
        # CRITICAL in any letter case, passed on upper-cased; blank means INFO.
        for raw, level in (
            ("warning", "WARNING"),
            ("CRITICAL", "CRITICAL"),
            ("Debug", "DEBUG"),
            (" error ", "ERROR"),
            ("  ", "INFO"),
        ):
            with self.subTest(DJANGO_LOG_LEVEL=raw):
                loaded = self.load(DJANGO_LOG_LEVEL=raw)
                self.assertEqual((loaded["LOG_LEVEL"], loaded["DJANGO_LOGGER_LEVEL"]), (level, level))

    def test_other_log_levels_are_refused_naming_the_variable(self):
        # WARN and FATAL are names Python's logging knows, but not ones the checker accepts; the
        # dotless "ı" upper-cases to "I" in Python (and JavaScript), so it must not pass as INFO.
        for raw in ("LOUD", "loud", "warn", "FATAL", "ınfo", "crıtıcal"):
            with self.subTest(DJANGO_LOG_LEVEL=raw):
                stderr = self.fail_with(clean_env(**{**REQUIRED, "DJANGO_LOG_LEVEL": raw}))
                self.assertIn("DJANGO_LOG_LEVEL (must be DEBUG, INFO, WARNING, ERROR or CRITICAL", stderr)
                if raw.isascii():
                    self.assertIn(f"got {raw!r}", stderr)  # what was given, not its upper case
                for name in REQUIRED:
                    self.assertNotIn(name, stderr)

    def test_common_settings_log_level_blank_or_invalid_means_info(self):
        # Development settings do not validate: a value logging cannot use falls back to INFO
        # instead of failing deep inside logging.config at start.
        code = "import config.common_settings as s; print(s.LOGGING['root']['level'])"
        for raw, level in (("warning", "WARNING"), ("  ", "INFO"), ("LOUD", "INFO")):
            with self.subTest(DJANGO_LOG_LEVEL=raw):
                result = subprocess.run(
                    [sys.executable, "-c", code],
                    cwd=settings.BASE_DIR,
                    env=clean_env(DJANGO_LOG_LEVEL=raw),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(result.stdout.strip(), level)

    def test_paths_from_environment(self):
        loaded = self.load(DJANGO_STATIC_ROOT="/srv/static", DJANGO_MEDIA_ROOT="/srv/media")
        self.assertEqual((loaded["STATIC_ROOT"], loaded["MEDIA_ROOT"]), ("/srv/static", "/srv/media"))

    def test_ssl_off_silences_exactly_the_four_tls_warnings(self):
        loaded = self.load()
        self.assertEqual(
            sorted(loaded["SILENCED_SYSTEM_CHECKS"]),
            ["security.W004", "security.W008", "security.W012", "security.W016"],
        )
        self.assertFalse(loaded["SECURE_SSL_REDIRECT"])
        self.assertFalse(loaded["SESSION_COOKIE_SECURE"])

    def test_ssl_on(self):
        loaded = self.load(DJANGO_SECURE_SSL="true", DJANGO_CSRF_TRUSTED_ORIGINS="https://a.example.com, https://b.example.com")
        # HSTS comes from the front (docker/proxy/start.sh, MYMDB_HSTS_SECONDS), not from Django.
        self.assertEqual(loaded["SILENCED_SYSTEM_CHECKS"], ["security.W004"])
        self.assertTrue(loaded["SECURE_SSL_REDIRECT"])
        self.assertEqual(loaded["SECURE_HSTS_SECONDS"], 0)
        self.assertFalse(loaded["SECURE_HSTS_INCLUDE_SUBDOMAINS"])
        self.assertFalse(loaded["SECURE_HSTS_PRELOAD"])
        self.assertTrue(loaded["SESSION_COOKIE_SECURE"])
        self.assertTrue(loaded["CSRF_COOKIE_SECURE"])
        self.assertEqual(loaded["SECURE_PROXY_SSL_HEADER"], ["HTTP_X_FORWARDED_PROTO", "https"])
        self.assertEqual(loaded["SECURE_REDIRECT_EXEMPT"], ["^healthz$"])
        self.assertEqual(loaded["CSRF_TRUSTED_ORIGINS"], ["https://a.example.com", "https://b.example.com"])

    def test_admin_url(self):
        self.assertEqual(self.load()["ADMIN_URL"], "admin")
        self.assertEqual(self.load(DJANGO_ADMIN_URL="staff-3f9a")["ADMIN_URL"], "staff-3f9a")

    def test_admin_url_must_be_one_path_segment(self):
        result = import_settings(clean_env(**{**REQUIRED, "DJANGO_ADMIN_URL": "a/b"}))
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("DJANGO_ADMIN_URL (letters, digits", result.stderr)

    def test_s3_uploads(self):
        loaded = self.load(DJANGO_UPLOAD_S3_BUCKET="mymdb-uploads", AWS_S3_REGION_NAME="eu-west-1")
        default = loaded["STORAGES"]["default"]
        self.assertEqual(default["BACKEND"], "storages.backends.s3.S3Storage")
        self.assertEqual(
            default["OPTIONS"],
            {
                "bucket_name": "mymdb-uploads",
                "location": "uploads",
                "default_acl": None,
                "querystring_auth": False,
                "file_overwrite": False,
                "region_name": "eu-west-1",
            },
        )
        self.assertEqual(
            loaded["STORAGES"]["staticfiles"]["BACKEND"],
            "django.contrib.staticfiles.storage.StaticFilesStorage",
        )

    def test_s3_region_fallback_and_endpoint(self):
        loaded = self.load(
            DJANGO_UPLOAD_S3_BUCKET="b",
            AWS_DEFAULT_REGION="us-east-2",
            AWS_S3_ENDPOINT_URL="http://minio:9000",
        )
        options = loaded["STORAGES"]["default"]["OPTIONS"]
        self.assertEqual(options["region_name"], "us-east-2")
        self.assertEqual(options["endpoint_url"], "http://minio:9000")
        self.assertEqual(options["addressing_style"], "path")

    def check_deploy(self, **overrides):
        return subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=settings.BASE_DIR,
            env=clean_env(
                DJANGO_SETTINGS_MODULE="config.production_settings", **{**REQUIRED, **overrides}
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )

    def test_check_deploy_passes_at_warning_level(self):
        for ssl in ("false", "true"):
            with self.subTest(DJANGO_SECURE_SSL=ssl):
                result = self.check_deploy(DJANGO_SECURE_SSL=ssl)
                self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_check_deploy_flags_a_weak_secret_key(self):
        result = self.check_deploy(DJANGO_SECRET_KEY="short")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("security.W009", result.stdout + result.stderr)

    def test_s3_storage_can_be_built_without_credentials(self):
        code = (
            "import django; django.setup()\n"
            "from django.core.files.storage import default_storage as s\n"
            "print(type(s._wrapped if hasattr(s, '_wrapped') else s).__name__)\n"
            "s._setup(); print(s.url('movie_images/x.png'))\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=settings.BASE_DIR,
            env=clean_env(
                DJANGO_SETTINGS_MODULE="config.production_settings",
                DJANGO_UPLOAD_S3_BUCKET="mymdb-uploads",
                AWS_S3_REGION_NAME="eu-west-1",
                **REQUIRED,
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("mymdb-uploads", result.stdout)
        self.assertIn("/uploads/movie_images/x.png", result.stdout)
        self.assertNotIn("X-Amz", result.stdout)
