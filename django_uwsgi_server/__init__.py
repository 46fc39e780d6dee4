"""A uWSGI-compatible prefork application server for Django, in pure Python."""

__version__ = "0.1.0"
