"""``python manage.py uwsgi_reload``: reload (or stop) the running runuwsgi server, and wait.

The server is found through ``settings.UWSGI`` (its ``pidfile``, else ``pidfile2``, and its
first ``master-fifo``) unless ``--pidfile`` / ``--fifo`` name one. By default the command
waits until every worker has been replaced and serves again (or the server is gone, with
``--stop``) and says how long it took.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from django_uwsgi_server.conf import ConfigError, build_config
from django_uwsgi_server.server import control


class Command(BaseCommand):
    help = ("Gracefully reload the runuwsgi server of this project (SIGHUP through its pidfile) "
            "and wait until every worker has been replaced. --chain, --stop and --brutal pick "
            "another action.")
    requires_system_checks: list[str] = []
    suppressed_base_arguments = {"--verbosity"}

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--pidfile", metavar="PATH",
                            help="The server's pidfile (default: 'pidfile' of settings.UWSGI).")
        parser.add_argument("--fifo", metavar="PATH",
                            help="The server's master FIFO (default: the first 'master-fifo' of "
                                 "settings.UWSGI).")
        parser.add_argument("--chain", action="store_true",
                            help="Chain reload: one worker at a time (needs the master FIFO).")
        parser.add_argument("--stop", action="store_true",
                            help="Stop the server gracefully (SIGINT) and wait until it is gone.")
        parser.add_argument("--brutal", action="store_true",
                            help="With --stop: stop at once (SIGQUIT). Alone: brutal reload, "
                                 "in-flight requests are dropped (needs the master FIFO).")
        parser.add_argument("--no-wait", action="store_true",
                            help="Return as soon as the command is sent.")
        parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                            help="How long to wait (default: 60).")

    def handle(self, *args: Any, **options: Any) -> None:
        pidfile, fifo = options["pidfile"], options["fifo"]
        if not pidfile and not fifo:
            pidfile, fifo = self._from_settings()
        try:
            action = control.action_name(chain=options["chain"], stop=options["stop"],
                                         brutal=options["brutal"])
            line = control.run(action, pidfile=pidfile, fifo=fifo,
                               wait=not options["no_wait"], timeout=options["timeout"])
        except control.ControlError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(line)

    @staticmethod
    def _from_settings() -> tuple[str | None, str | None]:
        try:
            cfg = build_config(getattr(settings, "UWSGI", None), {})
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        fifos = cfg.master_fifo or []
        return cfg.pidfile or cfg.pidfile2 or None, fifos[0] if fifos else None
