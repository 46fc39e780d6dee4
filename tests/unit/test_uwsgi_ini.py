"""The translation of a merged Config into uWSGI options (conf/uwsgi_ini.py)."""

import pytest

from django_uwsgi_server.conf import ConfigError, build_config
from django_uwsgi_server.conf.uwsgi_ini import Line, to_argv, to_ini, translate


def pairs(cli):
    return [(line.key, line.value) for line in translate(build_config({}, cli)) if not line.why]


def comments(cli):
    return {line.key: line.why for line in translate(build_config({}, cli)) if line.why}


def test_buffer_size_above_uwsgis_limit_is_clamped_with_a_comment():
    assert ("buffer-size", "65535") in pairs({"buffer_size": "1m"})
    assert "uWSGI's largest is 65535" in comments({"buffer_size": "1m"})["buffer-size"]
    assert ("buffer-size", "8192") in pairs({"buffer_size": "8k"})


def test_unix_sockets_get_our_660_unless_chmod_is_given():
    assert ("chmod-socket", "660") in pairs({"socket": ["/tmp/a.sock"]})
    assert ("chmod-socket", "666") in pairs({"socket": ["/tmp/a.sock"], "chmod_socket": True})
    assert not any(k == "chmod-socket" for k, _ in pairs({"socket": ["127.0.0.1:9"]}))


def test_master_is_always_on_and_flags_off_are_left_out():
    got = pairs({"master": False, "vacuum": False, "die_on_term": False})
    assert ("master", "true") in got
    assert not any(k in ("vacuum", "die-on-term") for k, _ in got)


def test_sockets_keep_their_order_and_http_stays_a_router():
    got = pairs({"http_socket": ["127.0.0.1:1", "127.0.0.1:2"], "http": ["127.0.0.1:3"],
                 "http_keepalive": "0"})
    sockets = [(k, v) for k, v in got if k.startswith("http")]
    assert sockets == [("http-socket", "127.0.0.1:1"), ("http-socket", "127.0.0.1:2"),
                       ("http", "127.0.0.1:3")]


def test_argv_and_ini_rendering():
    lines = [Line("master", "true", flag=True), Line("env", "A=%d"), Line("x", "1", why="ours")]
    assert to_argv(lines) == ["--master", "--env=A=%d"]  # no % magic on the command line
    assert to_ini(lines, "head") == "; head\n[uwsgi]\nmaster = true\nenv = A=%%d\n" \
                                    "; x = 1  -- left out: ours\n"


def test_stats_address_keeps_runuwsgis_loopback_rule():
    # uWSGI binds ":PORT" on every interface and takes "PORT" for a unix socket file; both
    # mean loopback to runuwsgi, so uWSGI gets the address runuwsgi would bind.
    assert ("stats", "127.0.0.1:9191") in pairs({"stats": ":9191"})
    assert ("stats", "127.0.0.1:9191") in pairs({"stats": "9191"})
    assert ("stats", "/run/s.sock") in pairs({"stats": "/run/s.sock"})
    assert ("stats", "0.0.0.0:9191") in pairs({"stats": "0.0.0.0:9191",
                                               "stats_allow_remote": True})


def test_a_remote_stats_address_needs_the_option_under_uwsgi_too():
    with pytest.raises(ConfigError, match=r"^stats 0\.0\.0\.0:9191: not a loopback address"):
        translate(build_config({}, {"stats": "0.0.0.0:9191"}))


def test_a_bare_port_socket_stays_a_loopback_port():
    # runuwsgi reads "9000" as 127.0.0.1:9000; uWSGI would make a unix socket file "9000".
    got = pairs({"socket": ["9000"]})
    assert ("socket", "127.0.0.1:9000") in got
    assert not any(k == "chmod-socket" for k, _ in got)


def test_shared_sockets_and_references_are_written_through():
    got = pairs({"shared_socket": ["/tmp/s.sock", "9001"], "socket": ["=0"],
                 "http_socket": ["=1"], "http_keepalive": "0"})
    assert ("shared-socket", "/tmp/s.sock") in got and ("shared-socket", "127.0.0.1:9001") in got
    assert ("socket", "=0") in got and ("http-socket", "=1") in got
    assert ("chmod-socket", "660") in got  # the shared unix socket gets our mode
    assert not any(k == "chmod-socket" for k, _ in pairs({"shared_socket": [":9"],
                                                          "socket": ["=0"]}))


def test_shared_sockets_come_before_the_options_referring_to_them():
    got = pairs({"socket": ["=0"], "shared_socket": ["127.0.0.1:1"]})
    keys = [k for k, _ in got]
    assert keys.index("shared-socket") < keys.index("socket")  # uWSGI resolves =N on reading
