#!/usr/bin/env python
"""Django's command-line utility for the example project."""

import importlib.util
import os
import sys
from pathlib import Path


def main():
    # Running from a checkout must work without installing the package, but an installed
    # django_uwsgi_server (e.g. in a venv under test) must win over the source tree.
    if importlib.util.find_spec("django_uwsgi_server") is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
