"""Settings of the end-to-end test project: small, and no database by default."""
import os

SECRET_KEY = "tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django_uwsgi_server", "testapp"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "testapp.urls"
WSGI_APPLICATION = "testsite.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("TEST_DB", ":memory:"),
    }
}
USE_TZ = True
LOGGING_CONFIG = None
# Tests pass their own options through the environment, as JSON, to check settings.UWSGI.
UWSGI = __import__("json").loads(os.environ.get("TEST_UWSGI_SETTINGS", "{}"))
# Tests break the settings on purpose (a reload must survive it): an extra module to import.
if os.environ.get("TEST_SETTINGS_EXTRA"):
    __import__(os.environ["TEST_SETTINGS_EXTRA"])
