"""Settings for the django-uwsgi-server example project.

A small shop: templated pages, a form, JSON, a file download, a streaming response, the
admin, and the ``/bench/...`` endpoints that ``bench/run.py`` measures.

Environment variables:

* ``DJANGO_DEBUG`` -- "1" turns DEBUG on.  Off by default so that the demo and the
  benchmark measure what production would run (no debug SQL logging, no debug pages).
  With DEBUG off Django serves no static files, so the admin is unstyled unless you
  run with ``DJANGO_DEBUG=1``.
* ``DJANGO_SECRET_KEY`` -- the fallback key below is for local use only.
* ``DJANGO_ALLOWED_HOSTS`` -- comma-separated; defaults to the loopback names only.

Run it with ``python manage.py migrate`` then ``python manage.py runuwsgi``, which
reads the ``UWSGI`` dict below (command-line options override it).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "dev-only-insecure-key-0b1c6f3e9a2d4e8f7c5a1b3d9e0f2a4c"
)

DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"

ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if h.strip()
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_uwsgi_server",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

# Generated files (the download sample, collected static) live here; it is gitignored.
VAR_DIR = BASE_DIR / "var"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Read by `manage.py runuwsgi`; keys are uWSGI option names, as in a uwsgi.ini.
UWSGI = {
    "http-socket": "127.0.0.1:8000",
    "processes": 2,
    "threads": 1,
    "buffer-size": 65535,
    # The stats server: uwsgitop, manage.py uwsgi_stats and the dashboard at /uwsgi/ read it.
    "stats": "127.0.0.1:9191",
}
