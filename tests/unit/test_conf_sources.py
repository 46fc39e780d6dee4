"""settings.UWSGI, precedence, and the Config object."""

import pytest

from django_uwsgi_server.conf import OPTIONS, Config, ConfigError, build_config, registry
from tests.planned import mark_planned


def fails(settings=None, cli=None, **kw):
    with pytest.raises(ConfigError) as info:
        build_config(settings, cli, **kw)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_defaults():
    cfg = build_config(None, None)
    assert cfg.http_socket == ["127.0.0.1:8000"]
    assert cfg.origin("http-socket") == "default"
    assert cfg.socket == [] and cfg.uwsgi_socket == [] and cfg.http == []
    assert cfg.threads == 1
    assert cfg.processes >= 2
    assert cfg.listen == 1024
    assert cfg.buffer_size == 65535
    assert cfg.limit_post == 0
    assert cfg.socket_timeout == 30
    assert cfg.http_keepalive == 15
    assert cfg.chmod_socket is None
    assert cfg.callable == "application"
    assert cfg.master is True and cfg.need_app is True and cfg.lazy_apps is False
    assert cfg.disable_logging is False and cfg.log_x_forwarded_for is False
    assert cfg.module is None and cfg.pythonpath == [] and cfg.env == [] and cfg.ini == []
    assert cfg.harakiri is None and cfg.vacuum is False  # planned options are present too


def test_every_option_is_an_attribute_and_in_as_dict():
    cfg = build_config({}, {})
    d = cfg.as_dict()
    for opt in OPTIONS:
        assert getattr(cfg, opt.dest) == d[opt.name]
    assert set(d) == {o.name for o in OPTIONS}


def test_config_is_read_only_and_lists_are_copied():
    cfg = build_config({"env": ["A=1"]}, None)
    with pytest.raises(AttributeError):
        cfg.processes = 3
    with pytest.raises(AttributeError):
        cfg.no_such_option  # noqa: B018
    cfg.as_dict()["env"].append("B=2")
    assert cfg.env == ["A=1"]
    assert isinstance(cfg, Config) and "A=1" in repr(cfg)


def test_settings_dict_values_aliases_and_underscores():
    cfg = build_config({
        "workers": 5, "HTTP_SOCKET": ":9000", "Buffer_Size": "32k", "master": False,
        "env": ["A=1", "B=2"], "python_path": "/a", "pp": ["/b"], "chmod-socket": "660",
        "virtualenv": "/venv", "add_header": "X-A: 1",
    }, None)
    assert cfg.processes == 5
    assert cfg.origin("processes") == cfg.origin("workers") == "settings.UWSGI"
    assert cfg.http_socket == [":9000"]
    assert cfg.buffer_size == 32768
    assert cfg.master is False
    assert cfg.env == ["A=1", "B=2"]
    assert cfg.pythonpath == ["/a", "/b"]
    assert cfg.chmod_socket == 0o660
    assert cfg.home == "/venv"
    assert cfg.add_header == ["X-A: 1"]


def test_settings_env_may_be_a_dict():
    assert build_config({"env": {"A": "1", "B": "x=y"}}, None).env == ["A=1", "B=x=y"]


def test_settings_later_entries_win_for_scalars():
    assert build_config({"processes": 2, "workers": 7}, None).processes == 7


def test_scalar_given_a_list_is_an_error():
    assert fails({"processes": [1, 2]}) == (
        "invalid value [1, 2] for option 'processes' (settings.UWSGI): expected one value, not a list"
    )


def test_bad_value_in_a_list_names_the_item():
    assert fails({"http-socket": [":80", "x:y"]}).startswith(
        "invalid value 'x:y' for option 'http-socket' (settings.UWSGI)"
    )


def test_settings_must_be_a_dict():
    assert fails(["processes"]) == "settings.UWSGI must be a dict, not list"


def test_unknown_option_in_settings_with_and_without_hint():
    assert fails({"proceses": 3}) == (
        "unknown option 'proceses' in settings.UWSGI — did you mean 'processes'?"
    )
    assert fails({"max_request": 3}) == (
        "unknown option 'max_request' in settings.UWSGI — did you mean 'max-requests'?"
    )
    assert fails({"zzzzqqq": 1}) == "unknown option 'zzzzqqq' in settings.UWSGI"


def test_planned_option_is_an_error(monkeypatch):
    mark_planned(monkeypatch, "req-logger")
    assert fails({"req-logger": "file:/tmp/x"}) == (
        "option 'req-logger' (settings.UWSGI) is not implemented yet by runuwsgi (planned)"
    )
    monkeypatch.setitem(registry.PLANNED_IN, "req-logger", "issue #99")
    assert fails(None, {"req_logger": ["file:/tmp/x"]}) == (
        "option 'req-logger' (command line) is not implemented yet by runuwsgi "
        "(planned, issue #99)"
    )


def test_unsupported_option_is_an_error():
    assert fails({"cheaper": 2}) == (
        "option 'cheaper' (settings.UWSGI) is not supported by runuwsgi: "
        "the number of workers is fixed; set processes"
    )
    assert fails({"yaml": "x.yml"}) == (
        "option 'yaml' (settings.UWSGI) is not supported by runuwsgi: use ini or settings.UWSGI"
    )


def test_accepted_options_are_validated_but_allowed():
    cfg = build_config({"enable-threads": True, "thunder_lock": "yes", "die-on-term": True,
                        "strict": True, "py-call-osafterfork": True,
                        "wsgi-env-behaviour": "holy"}, None)
    assert cfg.enable_threads is True and cfg.thunder_lock is True
    assert "expected true or false" in fails({"thunder-lock": "ture"})


def test_precedence_settings_ini_cli(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text("[uwsgi]\nprocesses = 3\nthreads = 4\nhttp-socket = :7000\n")
    settings = {"processes": 2, "threads": 2, "listen": 64, "http-socket": ":6000"}
    cfg = build_config(settings, {"ini": [str(ini)], "threads": "8"})
    assert cfg.listen == 64 and cfg.origin("listen") == "settings.UWSGI"
    assert cfg.processes == 3 and cfg.origin("processes") == f"{ini} line 2"
    assert cfg.threads == 8 and cfg.origin("threads") == "command line"
    assert cfg.http_socket == [":7000"]  # the ini's list replaces the settings' list
    assert cfg.ini == [str(ini)] and cfg.origin("ini") == "command line"


def test_ini_named_in_settings_beats_settings(tmp_path):
    (tmp_path / "app.ini").write_text("[uwsgi]\nprocesses = 3\n")
    cfg = build_config({"ini": "app.ini", "processes": 9}, None, base_dir=str(tmp_path))
    assert cfg.processes == 3


def test_higher_source_replaces_a_list():
    cfg = build_config({"http-socket": [":1", ":2"], "env": "A=1"},
                       {"http_socket": [":9000"]})
    assert cfg.http_socket == [":9000"]
    assert cfg.origin("http_socket") == "command line"
    assert cfg.env == ["A=1"]


def test_any_socket_option_disables_the_default_http_socket():
    for name in ("socket", "uwsgi-socket", "http11-socket", "http"):
        cfg = build_config({name: "127.0.0.1:3031"}, None)
        assert cfg.http_socket == [], name


def test_cli_ignores_non_option_keys_and_none():
    cfg = build_config(None, {"verbosity": 1, "settings": None, "traceback": False,
                              "no_color": False, "force_color": False, "skip_checks": True,
                              "pythonpath": None, "processes": "4"})
    assert cfg.processes == 4 and cfg.pythonpath == []


def test_cli_accepts_typed_values_like_call_command():
    cfg = build_config(None, {"processes": 3, "lazy_apps": True, "pythonpath": "/x"})
    assert cfg.processes == 3 and cfg.lazy_apps is True and cfg.pythonpath == ["/x"]


def test_cli_addrport():
    cfg = build_config({"http-socket": ":6000"}, {"addrport": "0:8080"})
    assert cfg.http_socket == ["0.0.0.0:8080"]
    assert fails(None, {"addrport": "nope!"}) == (
        '"nope!" is not a valid port number or address:port pair.'
    )


def test_cli_addrport_ini_file(tmp_path):
    (tmp_path / "app.ini").write_text("[web]\nprocesses = 3\n")
    cfg = build_config(None, {"addrport": f"{tmp_path}/app.ini:web"})
    assert cfg.processes == 3


def test_cli_bad_value_names_the_command_line():
    assert fails(None, {"processes": "many"}) == (
        "invalid value 'many' for option 'processes' (command line): expected a whole number >= 1"
    )


def test_origin_accepts_any_spelling():
    cfg = build_config({"workers": 2}, None)
    assert cfg.origin("workers") == cfg.origin("processes") == cfg.origin("PROCESSES")
    with pytest.raises(KeyError):
        cfg.origin("nope")


def test_set_placeholder_from_settings(tmp_path):
    (tmp_path / "app.ini").write_text("[uwsgi]\nchdir = /srv/%(project)\n")
    cfg = build_config({"set-placeholder": "project=shop", "ini": str(tmp_path / "app.ini")}, None)
    assert cfg.chdir == "/srv/shop"
    assert cfg.set_placeholder == ["project=shop"]
