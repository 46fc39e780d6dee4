"""Settings used by ``bench/run.py`` for every server it compares.

The benchmark passes all server options on the command line.  The demo's ``UWSGI`` dict
would otherwise add a second ``http-socket`` on port 8000 if list options from settings and
the command line accumulate (as they do across sources in uWSGI), and DEBUG must be off
whatever the caller's environment says.
"""

from .settings import *  # noqa: F403

DEBUG = False
UWSGI = {}
