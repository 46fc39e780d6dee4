"""Pidfiles, pid validation, the reload/stop client, uid/gid resolution, the daemon's report.

Processes used as stand-ins (``sleep``, a fake ``runuwsgi``) are started here and stopped by
their PID in teardown.
"""

import errno
import grp
import os
import pwd
import signal
import subprocess
import sys

import psutil
import pytest

from django_uwsgi_server.server import control, daemon, pidfile, privileges
from tests.server import wait_for


@pytest.fixture
def procs():
    """Factory: start a subprocess; every one is killed by PID at teardown."""
    started = []

    def start(argv):
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        started.append(proc)
        wait_for(lambda: _cmdline(proc.pid)[-1:] == argv[-1:], 10, f"{argv} to be executed")
        return proc

    yield start
    for proc in started:
        try:  # its own session: the group is its pid (a fake master's fake worker too)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(10)


def _cmdline(pid):
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:
        return []


def dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait(10)
    return proc.pid


def fake_master(procs, forks=False):
    """A process whose command line looks like a runuwsgi master (and, with forks, one
    child with the same command line, like a worker)."""
    code = ("import os, sys, time\n"
            "if len(sys.argv) > 2 and os.fork() == 0:\n"
            "    time.sleep(60); os._exit(0)\n"
            "time.sleep(60)\n")
    argv = [sys.executable, "-c", code, "runuwsgi"] + (["fork"] if forks else [])
    return procs(argv)


def write(path, text):
    path.write_text(text)
    return str(path)


# -- read_pid --------------------------------------------------------------------------------

def test_read_pid_accepts_a_pid_and_newline(tmp_path):
    assert pidfile.read_pid(write(tmp_path / "p", "1234\n")) == 1234
    assert pidfile.read_pid(write(tmp_path / "q", "  77  ")) == 77


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("\n", "is empty"),
    ("hello\n", "holds 'hello', not a pid"),
    ("12 34", "not a pid"),
    ("0\n", "holds 0, which is not a process id (not signalling it)"),
    ("-1\n", "holds -1, which is not a process id"),
    ("-4242\n", "holds -4242"),
])
def test_read_pid_rejects_what_is_not_a_pid(tmp_path, content, message):
    path = write(tmp_path / "p", content)
    with pytest.raises(pidfile.PidfileError) as exc:
        pidfile.read_pid(path)
    assert message in str(exc.value)
    assert path in str(exc.value)


def test_read_pid_missing_file_and_directory(tmp_path):
    with pytest.raises(pidfile.PidfileError, match="does not exist"):
        pidfile.read_pid(str(tmp_path / "nope"))
    with pytest.raises(pidfile.PidfileError, match="is a directory"):
        pidfile.read_pid(str(tmp_path))


# -- what is a master ------------------------------------------------------------------------

def test_master_problem(procs):
    assert "no process" in pidfile.master_problem(dead_pid())
    assert "this very process" in pidfile.master_problem(os.getpid())
    sleeper = procs(["sleep", "60"])
    assert "is not a runuwsgi master (it is 'sleep 60')" in pidfile.master_problem(sleeper.pid)
    master = fake_master(procs, forks=True)
    assert pidfile.master_problem(master.pid) is None
    children = wait_for(lambda: psutil.Process(master.pid).children(), 10, "the fake worker")
    assert f"is a runuwsgi worker (its master is pid {master.pid})" in \
        pidfile.master_problem(children[0].pid)


# -- check_free / write / remove -------------------------------------------------------------

def test_check_free_without_a_file(tmp_path):
    warnings = []
    pidfile.check_free(str(tmp_path / "p"), warnings.append)
    assert warnings == []


@pytest.mark.parametrize("content", ["garbage", "", "0", "DEAD"])
def test_check_free_replaces_a_stale_pidfile_with_a_warning(tmp_path, content):
    if content == "DEAD":
        content = str(dead_pid())
    path = write(tmp_path / "p", content)
    warnings = []
    pidfile.check_free(path, warnings.append)
    assert len(warnings) == 1 and "stale pidfile" in warnings[0] and path in warnings[0]


def test_check_free_treats_another_program_as_stale(tmp_path, procs):
    sleeper = procs(["sleep", "60"])
    warnings = []
    pidfile.check_free(write(tmp_path / "p", f"{sleeper.pid}\n"), warnings.append)
    assert "not a runuwsgi master" in warnings[0]


def test_check_free_refuses_a_running_server(tmp_path, procs):
    master = fake_master(procs)
    path = write(tmp_path / "p", f"{master.pid}\n")
    with pytest.raises(pidfile.PidfileError) as exc:
        pidfile.check_free(path, lambda line: None)
    assert str(exc.value) == f"pidfile {path} belongs to a running server (pid {master.pid})"


def test_check_free_own_pid_is_stale(tmp_path):
    warnings = []
    pidfile.check_free(write(tmp_path / "p", str(os.getpid())), warnings.append)
    assert warnings


def test_write_and_remove_only_our_own(tmp_path):
    path = str(tmp_path / "p")
    pidfile.write(path, 4321)
    assert open(path).read() == "4321\n"
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    assert not pidfile.remove(path, 1111)  # another server's now: left alone
    assert os.path.exists(path)
    assert pidfile.remove(path, 4321)
    assert not os.path.exists(path)
    assert not pidfile.remove(path, 4321)
    assert os.listdir(tmp_path) == []  # no temporary file left


def test_write_errors_are_one_line(tmp_path):
    with pytest.raises(pidfile.PidfileError, match="cannot write pidfile .*No such file"):
        pidfile.write(str(tmp_path / "no" / "dir" / "p"), 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_write_with_owner(tmp_path):
    nobody = pwd.getpwnam("nobody")
    path = str(tmp_path / "p")
    pidfile.write(path, 1, (nobody.pw_uid, -1))
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, os.getegid())


# -- privileges ------------------------------------------------------------------------------

def test_resolve_nothing():
    assert privileges.resolve(None, None) is None
    assert privileges.resolve("", "") is None


def test_resolve_user_name_takes_its_primary_group():
    nobody = pwd.getpwnam("nobody")
    ident = privileges.resolve("nobody", None)
    assert ident.uid == nobody.pw_uid and ident.gid == nobody.pw_gid
    assert ident.user == "nobody"
    assert ident.groups == tuple(os.getgrouplist("nobody", nobody.pw_gid))


def test_resolve_numbers_and_group_names():
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid)
    ident = privileges.resolve("65534", group.gr_name)
    assert (ident.uid, ident.gid) == (65534, group.gr_gid)
    unlisted = privileges.resolve("54321", "54322")
    assert (unlisted.uid, unlisted.gid, unlisted.groups, unlisted.user) == \
        (54321, 54322, (54322,), None)
    only_gid = privileges.resolve(None, "123")
    assert (only_gid.uid, only_gid.gid, only_gid.groups) == (None, 123, (123,))


def test_resolve_unknown_names():
    with pytest.raises(privileges.PrivilegeError, match="uid 'no-such-user-x': no such user"):
        privileges.resolve("no-such-user-x", None)
    with pytest.raises(privileges.PrivilegeError, match="gid 'no-such-group-x': no such group"):
        privileges.resolve("nobody", "no-such-group-x")


def test_parse_owner():
    nobody = pwd.getpwnam("nobody")
    assert privileges.parse_owner(None) is None
    assert privileges.parse_owner("nobody") == (nobody.pw_uid, -1)
    assert privileges.parse_owner("12:34") == (12, 34)
    assert privileges.parse_owner(":34") == (-1, 34)
    with pytest.raises(privileges.PrivilegeError, match="chown-socket 'nosuchuserx'"):
        privileges.parse_owner("nosuchuserx:0")


def test_needs_change():
    assert not privileges.needs_change(None)
    me = privileges.Identity(os.geteuid(), os.getegid(), None)
    assert not privileges.needs_change(me)
    assert privileges.needs_change(privileges.Identity(os.geteuid() + 1, None, None))


def test_drop_refused_is_one_line(monkeypatch):
    def refuse(*args):
        raise OSError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "setgroups", refuse)
    with pytest.raises(privileges.PrivilegeError,
                       match="could not switch to uid 5 .*: Operation not permitted"):
        privileges.drop(privileges.Identity(5, 5, (5,), "x"))


# -- the client ------------------------------------------------------------------------------

def test_action_names():
    assert control.action_name() == "reload"
    assert control.action_name(chain=True) == "chain"
    assert control.action_name(brutal=True) == "brutal-reload"
    assert control.action_name(stop=True) == "stop"
    assert control.action_name(stop=True, brutal=True) == "brutal-stop"
    with pytest.raises(control.ControlError):
        control.action_name(chain=True, stop=True)


def test_run_needs_a_pidfile_or_fifo():
    with pytest.raises(control.ControlError, match="no pidfile or master-fifo configured"):
        control.run("reload")


@pytest.mark.parametrize("action", ["chain", "brutal-reload"])
def test_fifo_only_actions_need_a_fifo(tmp_path, action):
    with pytest.raises(control.ControlError, match="needs master-fifo"):
        control.run(action, pidfile=str(tmp_path / "p"))


def test_stale_and_foreign_pids_are_never_signalled(tmp_path, procs):
    with pytest.raises(control.ControlError, match=r"is stale: no process \d+ is running"):
        control.run("reload", pidfile=write(tmp_path / "p", str(dead_pid())))
    sleeper = procs(["sleep", "60"])
    with pytest.raises(control.ControlError, match="not a runuwsgi master .*not signalling it"):
        control.run("stop", pidfile=write(tmp_path / "q", str(sleeper.pid)))
    assert sleeper.poll() is None


def test_permission_denied(tmp_path, procs, monkeypatch):
    master = fake_master(procs)

    def deny(pid, sig):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    with monkeypatch.context() as m, \
            pytest.raises(control.ControlError, match=f"not allowed to signal pid {master.pid}"):
        m.setattr(os, "kill", deny)
        control.run("reload", pidfile=write(tmp_path / "p", str(master.pid)), wait=False)


def test_signal_sent_without_waiting(tmp_path, procs):
    master = fake_master(procs)
    line = control.run("stop", pidfile=write(tmp_path / "p", str(master.pid)), wait=False)
    assert line == f"sent SIGINT (graceful stop) to the runuwsgi master (pid {master.pid})"
    assert master.wait(10) == -signal.SIGINT


def test_wait_gone_and_reloaded_time_out(procs):
    sleeper = procs(["sleep", "60"])
    with pytest.raises(control.ControlError, match="still running"):
        control.wait_gone(sleeper.pid, 0.1)
    with pytest.raises(control.ControlError,
                       match=f"timed out after 0.1 s: 1 old worker still running "
                             f"\\(pids {sleeper.pid}\\)"):
        control.wait_reloaded(os.getpid(), {sleeper.pid}, 0.1)


def test_fifo_errors(tmp_path):
    with pytest.raises(control.ControlError, match="does not exist"):
        control.run("chain", fifo=str(tmp_path / "fifo"))
    with pytest.raises(control.ControlError, match="is not a FIFO"):
        control.run("chain", fifo=write(tmp_path / "file", ""))
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    with pytest.raises(control.ControlError) as exc:
        control.run("chain", fifo=fifo)
    assert str(exc.value) == f"no server is reading FIFO {fifo}"


def test_fifo_command_byte(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        line = control.run("brutal-reload", fifo=fifo, wait=False)
        assert os.read(reader, 10) == b"R"
        assert line == f"sent 'R' (brutal reload) through FIFO {fifo} to the server"
        control.run("reload", fifo=fifo, wait=False)
        control.run("brutal-stop", fifo=fifo, wait=False)
        assert os.read(reader, 10) == b"rQ"
    finally:
        os.close(reader)


# -- the daemon's report ---------------------------------------------------------------------

def report(lines, log_path):
    r, w = os.pipe()
    if lines is not None:
        d = daemon.Daemon(w)
        lines(d)
    else:
        os.close(w)
    daemon._wait_report(r, log_path)


def test_daemon_ready(tmp_path):
    with pytest.raises(daemon.Started) as exc:
        report(lambda d: d.ready(), "/x.log")
    assert exc.value.pid == os.getpid()
    assert str(exc.value) == f"started, pid {os.getpid()}, log /x.log"


def test_daemon_failed(tmp_path):
    with pytest.raises(daemon.StartFailed) as exc:
        report(lambda d: d.failed("Error: that address\nis already in use"), "/x.log")
    assert str(exc.value) == "Error: that address is already in use"


def test_daemon_died_silently(tmp_path):
    log = write(tmp_path / "log", "starting\nSegmentation fault\n\n")
    with pytest.raises(daemon.StartFailed) as exc:
        report(None, log)
    assert str(exc.value) == (f"the server stopped during startup: Segmentation fault "
                              f"(see {log})")


def test_daemon_close_is_idempotent():
    r, w = os.pipe()
    d = daemon.Daemon(w)
    d.close()
    d.close()
    d.ready()  # closed: nothing to tell, no error
    assert os.read(r, 10) == b""
    os.close(r)
