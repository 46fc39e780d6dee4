"""The uwsgi and uwsgidecorators modules in a process where runuwsgi installed them (a
subprocess, so that this test process keeps ``import uwsgi`` failing): argument checks,
what raises, uwsgi.opt, the decorators' signal allocation."""

import subprocess
import sys
import textwrap

from tests.server import ROOT

SCRIPT = textwrap.dedent('''
    import pytest
    from django_uwsgi_server.compat import install
    from django_uwsgi_server.conf import build_config

    cfg = build_config({"PROCESSES": 2, "CACHE2": ["name=a,items=4"], "ENABLE_THREADS": True},
                       {"locks": 1})
    install(cfg)
    import uwsgi
    import uwsgidecorators as ud

    # uwsgi.opt: given options only, bytes values, True for a flag, no defaults.
    assert uwsgi.opt["processes"] == b"2", uwsgi.opt
    assert uwsgi.opt["cache2"] == b"name=a,items=4"
    assert uwsgi.opt["locks"] == b"1"
    assert uwsgi.opt["enable-threads"] is True
    assert "harakiri" not in uwsgi.opt
    assert uwsgi.numproc == 2 and uwsgi.worker_id() == 0 and uwsgi.mule_id() == 0

    # What runuwsgi lacks raises UnsupportedError, an AttributeError naming it.
    with pytest.raises(uwsgi.UnsupportedError, match="uwsgi.spooler_pid is not supported"):
        uwsgi.spooler_pid()
    assert not hasattr(uwsgi, "mule_get_msg")
    with pytest.raises(AttributeError):
        uwsgi.__path__
    for name in ("spool", "spoolforever", "spoolraw", "mulefunc", "mule", "farm", "rpc"):
        with pytest.raises(uwsgi.UnsupportedError, match=f"uwsgidecorators.{name} is not"):
            getattr(ud, name)(lambda: None)

    # Argument checks, with uWSGI's ranges.
    with pytest.raises(ValueError, match="0..255"):
        uwsgi.register_signal(256, "worker", print)
    with pytest.raises(uwsgi.UnsupportedError, match="mules"):
        uwsgi.register_signal(5, "mule1", print)
    with pytest.raises(ValueError, match="unknown signal target"):
        uwsgi.register_signal(5, "everybody", print)
    with pytest.raises(ValueError, match="invalid minute 60"):
        uwsgi.add_cron(5, 60, -1, -1, -1, -1)
    with pytest.raises(ValueError, match="invalid month 0"):
        uwsgi.add_cron(5, 0, 0, -1, 0, -1)
    with pytest.raises(ValueError, match="positive number"):
        uwsgi.add_timer(5, 0)
    with pytest.raises(ValueError, match="invalid lock number 2"):
        uwsgi.lock(2)  # --locks 1: locks 0 and 1
    uwsgi.lock(1)
    assert uwsgi.is_locked(1)
    uwsgi.unlock(1)
    with pytest.raises(ValueError, match="no cache named 'b'"):
        uwsgi.cache_get("k", "b")
    with pytest.raises(TypeError, match="str or bytes"):
        uwsgi.cache_set("k", 5)
    assert uwsgi.cache_set("k", "v") is True and uwsgi.cache_get(b"k") == b"v"

    # Decorators take the lowest free signal, as uWSGI's; the master cannot re-register.
    @ud.timer(3)
    def t(num):
        pass

    @ud.cron(-1, -1, -1, -1, -1)
    def c(num):
        pass

    assert [n for n in range(256) if uwsgi.signal_registered(n)] == [0, 1]
    assert ud.get_free_signal() == 2
    with pytest.raises(ValueError, match="already registered"):
        uwsgi.register_signal(0, "worker", print)

    # postfork and postfork(N): run by the hook, N only in worker N.
    ran = []
    ud.postfork(lambda: ran.append("all"))
    ud.postfork(2)(lambda: ran.append("two"))
    uwsgi.post_fork_hook()
    assert ran == ["all"]  # this is the master (worker id 0)

    @ud.lock
    def locked():
        return uwsgi.is_locked(0)

    assert locked() is True and not uwsgi.is_locked(0)
    print("OK")
''')


def test_the_modules_inside_a_runuwsgi_process():
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(ROOT), capture_output=True,
                            text=True, timeout=60,
                            env={"DJANGO_SETTINGS_MODULE": "", "PATH": "/usr/bin:/bin"})
    assert result.stdout.strip() == "OK", result.stderr
