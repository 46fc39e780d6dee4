"""A WSGI file/module outside the Django project, for --wsgi-file, --module and --callable."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"other application"]


def custom(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"custom callable"]


def make_app():
    return custom
