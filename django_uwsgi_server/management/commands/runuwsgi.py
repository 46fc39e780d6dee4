"""``python manage.py runuwsgi``: serve this project with the bundled prefork server.

Options are uWSGI's (``--http-socket``, ``--socket``, ``--processes``, ``--ini``...), read
from ``settings.UWSGI``, ``--ini`` files and the command line, in that order of precedence.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from django_uwsgi_server.conf import (
    ConfigError,
    add_arguments,
    build_config,
    unknown_option_message,
)
from django_uwsgi_server.server import run
from django_uwsgi_server.server.loader import AppLoadError, load_app, prepare_environment


class Command(BaseCommand):
    help = ("Serve this Django project with a uWSGI-compatible prefork server (HTTP/1.1 and the "
            "uwsgi protocol). Options are uWSGI's, also read from settings.UWSGI and --ini files.")
    # Checks run in handle(), after the options are known to be valid, like runserver.
    requires_system_checks: list[str] = []
    suppressed_base_arguments = {"--verbosity"}

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> Any:
        # No prefix matching: "--proc 3" must not silently mean --processes.
        parser = super().create_parser(prog_name, subcommand, allow_abbrev=False, **kwargs)
        plain_error = parser.error

        def error(message: str) -> None:
            if message.startswith("unrecognized arguments:"):
                word = message.split(":", 1)[1].split()[0]
                parser.exit(2, f"{prog_name} {subcommand}: "
                            f"{unknown_option_message(word, parser._option_string_actions)}\n")
            plain_error(message)

        parser.error = error
        return parser

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "addrport", nargs="?",
            help="Like runserver: PORT or ADDR:PORT to serve HTTP on (default 127.0.0.1:8000 "
                 "when no socket option is set).")
        # Django adds --skip-checks only to commands that run checks before handle().
        parser.add_argument("--skip-checks", action="store_true",
                            help="Skip Django's system checks before serving.")
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        cli = {k: v for k, v in options.items() if v is not None}
        try:
            cfg = build_config(getattr(settings, "UWSGI", None), cli)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if not options.get("skip_checks"):
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
            self.check_migrations()
        try:
            prepare_environment(cfg)
            app = None
            if not cfg.lazy_apps:
                app = load_app(cfg)
        except AppLoadError as exc:
            if exc.__cause__ is not None:
                traceback.print_exception(exc.__cause__, file=sys.stderr)
            raise CommandError(str(exc)) from None
        app_name = cfg.module or cfg.wsgi_file or getattr(settings, "WSGI_APPLICATION", "")
        try:
            listeners = run.bind_all(cfg, self.stdout)
        except run.ServerError as exc:
            raise CommandError(f"Error: {exc}") from None
        run.banner(cfg, listeners, app_name, self.stdout)
        code = run.serve(cfg, app, lambda: load_app(cfg), listeners)
        if code:
            sys.exit(code)
