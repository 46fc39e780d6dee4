"""WSGI entry point: ``mysite.wsgi:application`` for runuwsgi, uWSGI or gunicorn."""

import importlib.util
import os
import sys
from pathlib import Path

# Other servers import this module directly (not through manage.py), and settings list
# django_uwsgi_server in INSTALLED_APPS, so a checkout must be importable here too.
if importlib.util.find_spec("django_uwsgi_server") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
