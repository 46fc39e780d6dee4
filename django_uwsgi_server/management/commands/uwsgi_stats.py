"""``python manage.py uwsgi_stats``: what every worker of the running server is doing.

Reads the stats server (``stats`` in settings.UWSGI, or ``--stats ADDR``) once and prints a
table; ``--json`` prints the raw document (uWSGI's schema), ``--watch N`` refreshes every N
seconds until Ctrl-C (or ``--count`` refreshes).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from django_uwsgi_server.conf import ConfigError, build_config
from django_uwsgi_server.server.stats_client import StatsUnavailable, fetch_stats

_COLUMNS = ("WID", "PID", "STATUS", "REQUESTS", "EXC", "AVG ms", "RSS", "HARAKIRI",
            "RESPAWNS", "LAST SPAWN")


def _size(n: float) -> str:
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}{unit}"
    return str(int(n))


def render(doc: dict[str, Any], address: str) -> str:
    """The table ``uwsgi_stats`` prints for a stats document."""
    workers = doc.get("workers", [])
    busy = sum(1 for w in workers if w.get("status") == "busy")
    total = sum(w.get("requests", 0) for w in workers)
    sockets = ", ".join(f"{s['name']} {s['queue']}/{s['max_queue']}"
                        for s in doc.get("sockets", []))
    lines = [f"{address} — django-uwsgi-server {doc.get('version', '?')}, master pid "
             f"{doc.get('pid', '?')}: {len(workers)} workers ({busy} busy), {total} requests",
             f"listen queue: {doc.get('listen_queue', 0)}"
             + (f" ({sockets})" if sockets else "")]
    rows = [_COLUMNS]
    for w in workers:
        spawn = time.strftime("%H:%M:%S", time.localtime(w["last_spawn"])) \
            if w.get("last_spawn") else "-"
        rows.append((str(w["id"]), str(w["pid"]), w["status"], str(w["requests"]),
                     str(w["exceptions"]), f"{w['avg_rt'] / 1000:.1f}", _size(w["rss"]),
                     str(w["harakiri_count"]), str(max(w["respawn_count"] - 1, 0)), spawn))
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    for row in rows:
        lines.append("  ".join(cell.rjust(width) if i not in (2, 9) else cell.ljust(width)
                               for i, (cell, width) in enumerate(zip(row, widths, strict=True)))
                     .rstrip())
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = ("Show the running runuwsgi server's workers (status, requests, memory, response "
            "time, harakiri, respawns) and listen queue, from its stats server.")
    requires_system_checks: list[str] = []
    suppressed_base_arguments = {"--verbosity"}

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--stats", metavar="ADDR",
                            help="The stats server: host:port, a unix socket path or "
                                 "http://host:port/ (default: 'stats' of settings.UWSGI).")
        parser.add_argument("--json", action="store_true",
                            help="Print the raw stats document (uWSGI's JSON schema).")
        parser.add_argument("--watch", type=float, metavar="SECONDS",
                            help="Refresh every SECONDS until Ctrl-C.")
        parser.add_argument("--count", type=int, default=0, metavar="N",
                            help="With --watch: stop after N refreshes (default: no limit).")
        parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                            help="How long to wait for the stats server (default: 3).")

    def handle(self, *args: Any, **options: Any) -> None:
        address, http = options["stats"], False
        if not address:
            address, http = self._from_settings()
        if options["watch"] is not None and options["watch"] <= 0:
            raise CommandError("--watch: expected a number of seconds above 0")
        try:
            self._show(address, http, options)
            count = 1
            while options["watch"] and (not options["count"] or count < options["count"]):
                time.sleep(options["watch"])
                if self.stdout.isatty() and not options["json"]:
                    self.stdout.write("\033[H\033[2J", ending="")
                self._show(address, http, options)
                count += 1
        except KeyboardInterrupt:
            self.stdout.write("")
        except StatsUnavailable as exc:
            raise CommandError(str(exc)) from None

    def _show(self, address: str, http: bool, options: dict[str, Any]) -> None:
        doc = fetch_stats(address, options["timeout"], http=http)
        if options["json"]:
            self.stdout.write(json.dumps(doc, indent=1))
        else:
            self.stdout.write(render(doc, address), ending="")
        sys.stdout.flush()

    @staticmethod
    def _from_settings() -> tuple[str, bool]:
        try:
            cfg = build_config(getattr(settings, "UWSGI", None), {})
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if not cfg.stats:
            raise CommandError("no stats address: set UWSGI = {'stats': '127.0.0.1:9191', ...} "
                               "in settings (and run the server with it), or pass --stats ADDR")
        return cfg.stats, bool(cfg.stats_http)
