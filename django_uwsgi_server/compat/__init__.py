"""uWSGI compatibility: the ``uwsgi`` and ``uwsgidecorators`` modules inside runuwsgi.

:func:`install` (called by runuwsgi before it imports the application) makes them
importable in the server's processes only.
"""

from .runtime import install

__all__ = ["install"]
