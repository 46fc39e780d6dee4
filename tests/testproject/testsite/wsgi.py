import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testsite.settings")
application = get_wsgi_application()

if os.environ.get("TEST_IMPORT_LOG"):  # who imports the WSGI app (privilege-drop tests)
    with open(os.environ["TEST_IMPORT_LOG"], "a") as _log:
        _log.write(f"{os.getpid()} {os.geteuid()}\n")
