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
# The admin dashboard's tests: the contrib apps it needs, and a database (TEST_DB) they
# migrate. Off by default, so other tests keep a project with no middleware to speak of.
if os.environ.get("TEST_DASHBOARD"):
    INSTALLED_APPS += ["django.contrib.admin", "django.contrib.auth",
                       "django.contrib.contenttypes", "django.contrib.sessions",
                       "django.contrib.messages"]
    MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ]
    TEMPLATES = [{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": [
            "django.template.context_processors.request",
            "django.contrib.auth.context_processors.auth",
            "django.contrib.messages.context_processors.messages",
        ]},
    }]
