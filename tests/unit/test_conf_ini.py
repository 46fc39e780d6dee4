"""uWSGI ini files: sections, line rules, magic variables, includes, errors."""

import os
import socket

import pytest

from django_uwsgi_server.conf import ConfigError, build_config
from django_uwsgi_server.conf.ini import split_spec
from tests.planned import mark_planned


@pytest.fixture
def ini(tmp_path):
    def write(text, name="app.ini"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)
    return write


def read(spec, **settings):
    return build_config(settings or None, {"ini": [spec]})


def fails(spec):
    with pytest.raises(ConfigError) as info:
        read(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_split_spec():
    assert split_spec("a.ini") == ("a.ini", "uwsgi")
    assert split_spec("/x/a.ini:prod") == ("/x/a.ini", "prod")
    assert split_spec("a.ini:") == ("a.ini:", "uwsgi")
    assert split_spec("/x:y/a.ini") == ("/x:y/a.ini", "uwsgi")


def test_uwsgi_section_only(ini):
    path = ini("processes = 9\n[other]\nprocesses = 8\n[uwsgi]\nprocesses = 3\n[x]\nthreads = 5\n")
    cfg = read(path)
    assert cfg.processes == 3 and cfg.threads == 1


def test_named_section(ini):
    path = ini("[uwsgi]\nprocesses = 3\n[prod]\nprocesses = 6\n")
    assert read(f"{path}:prod").processes == 6


def test_repeated_section_is_concatenated(ini):
    path = ini("[uwsgi]\nenv = A=1\n[x]\nenv = X=0\n[uwsgi]\nenv = B=2\n")
    assert read(path).env == ["A=1", "B=2"]


def test_missing_section_is_an_error(ini):
    path = ini("[uwsgi]\nprocesses = 3\n")
    assert fails(f"{path}:prod") == (
        f"section [prod] not found in ini file {path!r} (command line)"
    )


def test_missing_file_is_an_error(tmp_path):
    path = str(tmp_path / "nope.ini")
    assert fails(path) == f"ini file {path!r} (command line) does not exist"


def test_line_rules(ini):
    path = ini(
        "[uwsgi]\n"
        "; a comment\n"
        "# another = comment\n"
        "   \t\n"
        "  processes   =   4  \r\n"
        "module = a.wsgi ; not a comment\n"
        "log-format = a=b\n"
        "lazy-apps\n"
        "chmod-socket\n"
        "http-keepalive =\n"
    )
    cfg = read(path)
    assert cfg.processes == 4
    assert cfg.module == "a.wsgi ; not a comment"  # uWSGI keeps inline text
    assert cfg.log_format == "a=b"  # split at the first =
    assert cfg.lazy_apps is True  # no = means an empty value, which turns a flag on
    assert cfg.chmod_socket == 0o666
    assert cfg.http_keepalive == 15


def test_repeated_keys(ini):
    path = ini("[uwsgi]\nenv = A=1\nenv = B=2\nprocesses = 2\nworkers = 5\npp = /a\npythonpath = /b\n")
    cfg = read(path)
    assert cfg.env == ["A=1", "B=2"]
    assert cfg.processes == 5
    assert cfg.origin("processes") == f"{path} line 5"
    assert cfg.pythonpath == ["/a", "/b"]


def test_underscores_and_case_in_keys(ini):
    cfg = read(ini("[uwsgi]\nBuffer_Size = 8k\nlog_x_forwarded_for = true\n"))
    assert cfg.buffer_size == 8192 and cfg.log_x_forwarded_for is True


def test_magic_variables(ini, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = ini(
        "[uwsgi]\n"
        "chdir = %d\n"
        "wsgi-file = %p\n"
        "logto = %n.%e|%s|%c|%x|%v|%h|%k\n"
        "log-format = 100%% %Y %d\n"
        "home = %Q%\n",
        name="conf/site.ini",
    )
    cfg = read(path)
    directory = str(tmp_path / "conf") + os.sep
    assert cfg.chdir == directory  # with uWSGI's trailing slash
    assert cfg.wsgi_file == path
    assert cfg.logto == (
        f"site.ini|site.ini|conf|uwsgi|{tmp_path}|{socket.gethostname()}|{os.cpu_count()}"
    )
    assert cfg.log_format == f"100% %Y {directory}"  # unknown %Y is kept
    assert cfg.home == "%Q%"


def test_section_magic(ini):
    path = ini("[prod]\nlogto = /var/log/%x.log\n")
    assert read(f"{path}:prod").logto == "/var/log/prod.log"


def test_reference_to_options(ini):
    path = ini("[uwsgi]\nchdir = /srv/app\npythonpath = %(chdir)/src\nlogto = %(callable)-%(threads)\n"
               "env = A=1\nmodule = %(env)\n")
    cfg = read(path, threads=3)
    assert cfg.pythonpath == ["/srv/app/src"]
    assert cfg.logto == "application-3"  # defaults and settings.UWSGI are visible too
    assert cfg.module == "A=1"  # a list gives its first item


def test_implicit_placeholders(ini):
    path = ini("[uwsgi]\nproject_name = shop\nbase = /srv/%(project_name)\nchdir = %(base)\n")
    assert read(path).chdir == "/srv/shop"


def test_set_placeholder(ini):
    path = ini("[uwsgi]\nset-ph = root=/srv\nchdir = %(root)/x\n")
    assert read(path).chdir == "/srv/x"


def test_unknown_reference_is_an_error(ini):
    path = ini("[uwsgi]\nchdir = %(nothing)/x\n")
    assert fails(path) == f"%(nothing) ({path} line 2) refers to no option or placeholder set before it"


def test_unset_option_reference_is_an_error(ini):
    assert "%(module)" in fails(ini("[uwsgi]\nchdir = %(module)\n"))


def test_environment_variables(ini, monkeypatch):
    monkeypatch.setenv("APP_PORT", "9123")
    monkeypatch.delenv("NOT_SET_XYZ", raising=False)
    assert read(ini("[uwsgi]\nhttp-socket = :$(APP_PORT)\n")).http_socket == [":9123"]
    path = ini("[uwsgi]\nchdir = $(NOT_SET_XYZ)\n", name="b.ini")
    assert fails(path) == (
        f"environment variable 'NOT_SET_XYZ' used as $(NOT_SET_XYZ) ({path} line 2) is not set"
    )


def test_unknown_key_with_line_number_and_hint(ini):
    path = ini("[uwsgi]\n\nproceses = 4\n")
    assert fails(path) == f"unknown option 'proceses' in {path} line 3 — did you mean 'processes'?"


def test_unknown_key_without_hint(ini):
    path = ini("[uwsgi]\nzzqqxx = 4\n")
    assert fails(path) == f"unknown option 'zzqqxx' in {path} line 2"


def test_bad_value_names_file_and_line(ini):
    path = ini("[uwsgi]\nmaster = true\nmaster = ture\n")
    assert fails(path) == (
        f"invalid value 'ture' for option 'master' ({path} line 3): expected true or false "
        "(also yes/no, on/off, 1/0; an empty value means true)"
    )


def test_planned_and_unsupported_in_ini(ini, monkeypatch):
    mark_planned(monkeypatch, "req-logger")
    path = ini("[uwsgi]\nreq-logger = file:/tmp/x\n")
    assert fails(path) == (
        f"option 'req-logger' ({path} line 2) is not implemented yet by runuwsgi (planned)"
    )
    path = ini("[uwsgi]\nif-env = X\nendif =\n", name="b.ini")
    assert fails(path).startswith(f"option 'if-env' ({path} line 2) is not supported by runuwsgi: ")


def test_include_with_ini_key(ini):
    base = ini("[uwsgi]\nprocesses = 2\nenv = A=1\nproject = shop\n", name="base.ini")
    path = ini("[uwsgi]\nenv = Z=0\nini = %dbase.ini\nthreads = 3\nprocesses = 5\n"
               "chdir = /srv/%(project)\n")
    cfg = read(path)
    assert cfg.env == ["Z=0", "A=1"]  # included at the position of the ini line
    assert cfg.processes == 5 and cfg.threads == 3
    assert cfg.chdir == "/srv/shop"  # placeholders cross files
    assert cfg.ini == [path, base]


def test_include_cycle_is_an_error(ini):
    a = ini("[uwsgi]\nini = %db.ini\n", name="a.ini")
    ini("[uwsgi]\nini = %da.ini\n", name="b.ini")
    assert "ini files include each other" in fails(a)


def test_include_of_missing_file_names_the_line(ini, tmp_path):
    path = ini("[uwsgi]\nini = %dnope.ini\n")
    assert fails(path) == f"ini file '{tmp_path}/nope.ini' ({path} line 2) does not exist"


def test_ini_files_accumulate_lists_and_cli_files_come_after_settings(ini):
    one = ini("[uwsgi]\nenv = A=1\nprocesses = 2\n", name="one.ini")
    two = ini("[uwsgi]\nenv = B=2\nprocesses = 3\n", name="two.ini")
    cfg = build_config({"ini": one}, {"ini": [two]})
    assert cfg.env == ["A=1", "B=2"] and cfg.processes == 3


def test_byte_order_mark_is_ignored(tmp_path):
    path = tmp_path / "bom.ini"
    path.write_bytes("\ufeff[uwsgi]\nprocesses = 3\n".encode())
    assert read(str(path)).processes == 3
