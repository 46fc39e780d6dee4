"""``python manage.py runuwsgi``: serve this project with the bundled prefork server.

Options are uWSGI's (``--http-socket``, ``--socket``, ``--processes``, ``--ini``...), read
from ``settings.UWSGI``, ``--ini`` files and the command line, in that order of precedence.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.urls import get_resolver

from django_uwsgi_server import compat
from django_uwsgi_server.conf import (
    ConfigError,
    add_arguments,
    build_config,
    unknown_option_message,
)
from django_uwsgi_server.conf.uwsgi_ini import to_ini, translate
from django_uwsgi_server.server import (
    autoreload,
    control,
    daemon,
    engine,
    pidfile,
    privileges,
    run,
    static,
    stats_server,
)
from django_uwsgi_server.server import reload as reexec
from django_uwsgi_server.server.loader import AppLoadError, load_app, prepare_environment

_INI_HEADER = """\
uWSGI configuration printed by: manage.py runuwsgi --print-ini
(settings.UWSGI, ini files and the command line merged; runuwsgi's defaults written out
where uWSGI's differ). Run it with the same virtualenv: uwsgi --ini THIS_FILE"""


class Command(BaseCommand):
    help = ("Serve this Django project with a uWSGI-compatible prefork server (HTTP/1.1 and the "
            "uwsgi protocol). Options are uWSGI's, also read from settings.UWSGI and --ini files.")
    # Checks run in handle(), after the options are known to be valid, like runserver.
    requires_system_checks: list[str] = []
    suppressed_base_arguments = {"--verbosity"}
    _daemon: daemon.Daemon | None = None  # in a daemonized master, until it is ready

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
        parser.add_argument("--print-ini", action="store_true",
                            help="Print the merged options as an ini file for the real uWSGI, "
                                 "and exit.")
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        cli = {k: v for k, v in options.items() if v is not None}
        try:
            cfg = build_config(getattr(settings, "UWSGI", None), cli)
            engine.check(cfg)
            ini = to_ini(translate(cfg), _INI_HEADER) if options.get("print_ini") else None
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if ini is not None:
            self.stdout.write(ini, ending="")
            return None
        if cfg.reload or cfg.stop:  # uWSGI's client commands: signal a server, exit
            return self._control(cfg)
        if cfg.engine == "uwsgi":
            return self._uwsgi(cfg, options)
        try:  # import uwsgi / uwsgidecorators work from here on (in this process only)
            compat.install(cfg)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if reexec.is_probe():  # a reload's check that the new code loads
            identity = self._identity(cfg)
            try:
                prepare_environment(cfg)
                if identity is not None:  # as the workers will: after the drop
                    privileges.drop(identity)
                if not cfg.lazy_apps or identity is not None:
                    load_app(cfg)
            except privileges.PrivilegeError as exc:
                raise CommandError(f"reload check: {exc}") from None
            except AppLoadError as exc:
                if exc.__cause__ is not None:
                    traceback.print_exception(exc.__cause__, file=sys.stderr)
                raise CommandError(f"reload check: {exc}") from None
            return None
        try:
            seconds = autoreload.interval(cfg)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        if seconds and not autoreload.is_child():
            try:  # the child would only report it, and be restarted at every change
                static.check(cfg)
            except static.StaticConfigError as exc:
                raise CommandError(str(exc)) from None
            return self._autoreload_parent(cfg, seconds)
        child = autoreload.is_child()
        again = reexec.is_reexec()  # a graceful reload re-executed the master
        # Pidfile paths are taken from where the command was started (before chdir).
        pidfiles = [os.path.abspath(p) if p else None for p in (cfg.pidfile, cfg.pidfile2)]
        identity = self._identity(cfg)
        if not again:
            for path in pidfiles:
                if path:
                    try:
                        pidfile.check_free(path, lambda line: self.stderr.write(f"warning: {line}"))
                    except pidfile.PidfileError as exc:
                        raise CommandError(str(exc)) from None
        if cfg.daemonize and not again and not self._detach(cfg, cfg.daemonize):
            return None  # the launcher: the daemon has reported
        broken = None  # autoreload: code that does not import is shown, not fatal
        if child:
            _, broken = autoreload.guarded(lambda: get_resolver().urlconf_module, self.stderr)
        if not options.get("skip_checks") and not again and broken is None:
            self.stdout.write("Performing system checks...\n\n")
            if child:
                autoreload.guarded(self._checks, self.stderr)
            else:
                self._checks()
        app_failed = False
        loader = lambda: load_app(cfg)  # noqa: E731
        if child:
            loader = autoreload.loader(loader, settings.DEBUG, self.stderr, broken)
        try:
            prepare_environment(cfg)
            app = None
            # With uid/gid the master (root) never imports the WSGI app: each worker does,
            # after it dropped privileges (the master still re-execs on reload, so new
            # settings and models are picked up).
            if not cfg.lazy_apps and identity is None:
                app = loader()
        except AppLoadError as exc:
            if exc.__cause__ is not None:
                traceback.print_exception(exc.__cause__, file=sys.stderr)
            if not again:
                raise CommandError(str(exc)) from None
            # A reload with broken code: the old workers keep serving the old code.
            sys.stderr.write(f"{exc}\n")
            app_failed = True
        try:
            static_files = static.build(cfg, strict=not again)
        except static.StaticConfigError as exc:
            raise CommandError(str(exc)) from None
        if cfg.daemonize2 and not cfg.daemonize and not again \
                and not self._detach(cfg, cfg.daemonize2):
            return None
        app_name = cfg.module or cfg.wsgi_file or getattr(settings, "WSGI_APPLICATION", "")
        try:
            listeners = reexec.inherited_listeners() or autoreload.inherited_listeners() \
                or run.bind_all(cfg, self.stdout)
        except run.ServerError as exc:
            raise CommandError(f"Error: {exc}") from None
        if not again:  # the same pid after a reload re-exec: the pidfiles are right
            try:
                run.write_pidfiles(pidfiles[0], pidfiles[1], identity)
            except run.ServerError as exc:
                for listener in listeners:
                    listener.sock.close()
                raise CommandError(f"Error: {exc}") from None
        if again:
            sys.stderr.write(f"master (pid: {os.getpid()}) re-executed: serving {app_name} "
                             f"with the new code\n")
        else:
            for line in static_files.describe() if static_files else ():
                self.stdout.write(f"Static files: {line}\n")
            run.banner(cfg, listeners, app_name, self.stdout)
        # an autoreload child's sockets belong to the parent, which vacuums them
        unix_files = run.unix_socket_files(listeners) if cfg.vacuum and not child else []
        master_pid = os.getpid()

        def on_exit() -> None:  # our pidfiles always; unix socket files with vacuum
            if os.getpid() == master_pid:
                run.cleanup(master_pid, [p for p in pidfiles if p], unix_files)

        if child:
            autoreload.watch()
        try:
            code = run.serve(cfg, app, loader, listeners, app_failed=app_failed,
                             identity=identity, daemon=self._daemon, on_exit=on_exit,
                             static=static_files,
                             on_ready=self._daemon.ready if self._daemon is not None else None)
        except run.ServerError as exc:  # the stats server could not bind
            on_exit()
            raise CommandError(f"Error: {exc}") from None
        except BaseException:
            on_exit()  # the master loop failed: do not leave a pidfile naming a dead pid
            raise
        code = autoreload.exit_code(code)
        if code:
            sys.exit(code)

    def _checks(self) -> None:
        self.check(display_num_errors=True)
        self.check_migrations()

    def _autoreload_parent(self, cfg: Any, seconds: int) -> None:
        """Bind once, run the server as a child and restart it on changes."""
        try:
            listeners = run.bind_all(cfg, self.stdout)
        except run.ServerError as exc:
            raise CommandError(f"Error: {exc}") from None
        # bind_all checked the stats address; each child serves it (held here, a TCP
        # address would be "in use" for every child).
        stats_server.release()
        unix_files = run.unix_socket_files(listeners) if cfg.vacuum else []
        code = autoreload.run_parent(listeners, seconds, cfg.die_on_term)
        run.cleanup(os.getpid(), [], unix_files)
        if code:
            sys.exit(code)

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            if self._daemon is not None:  # tell the waiting launcher (it exits non-zero)
                self._daemon.failed(str(exc))
            raise

    def _uwsgi(self, cfg: Any, options: dict[str, Any]) -> None:
        """``engine = uwsgi``: the same checks, then exec the real uWSGI."""
        if not options.get("skip_checks"):
            self.stdout.write("Performing system checks...\n\n")
            self.check(display_num_errors=True)
            self.check_migrations()
        try:
            engine.exec_uwsgi(cfg, self.stdout, self.stderr)
        except (engine.EngineError, ConfigError) as exc:
            raise CommandError(str(exc)) from None

    def _control(self, cfg: Any) -> None:
        """``--reload PIDFILE`` / ``--stop PIDFILE``: like uWSGI, signal and return at once
        (``manage.py uwsgi_reload`` waits and reports)."""
        if cfg.reload and cfg.stop:
            raise CommandError("--reload and --stop do not go together")
        try:
            line = control.run("stop" if cfg.stop else "reload", pidfile=cfg.stop or cfg.reload,
                               wait=False)
        except control.ControlError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(line)

    def _identity(self, cfg: Any) -> privileges.Identity | None:
        """uid/gid, resolved before anything is bound: a typo is a one-line error."""
        try:
            identity = privileges.resolve(cfg.uid, cfg.gid)
            privileges.parse_owner(cfg.chown_socket)
        except privileges.PrivilegeError as exc:
            raise CommandError(str(exc)) from None
        if identity is not None and os.geteuid() != 0:
            if privileges.needs_change(identity):
                self.stderr.write(f"warning: uid/gid ignored: only root can switch the workers "
                                  f"to {identity.describe()} (running as uid {os.geteuid()})")
            return None
        return identity

    def _detach(self, cfg: Any, daemon_log: str) -> bool:
        """daemonize: True in the daemon, which carries on; False in the launcher, once the
        daemon has reported (it raises CommandError when the daemon failed)."""
        log = cfg.logto or daemon_log  # logto wins (uWSGI would ignore it)
        try:
            self._daemon = daemon.detach(log)
        except daemon.Started as started:
            self.stdout.write(str(started))
            return False
        except daemon.StartFailed as exc:
            raise CommandError(str(exc)) from None
        return True
