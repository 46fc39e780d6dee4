from django.apps import AppConfig


class DjangoUwsgiServerConfig(AppConfig):
    name = "django_uwsgi_server"
    verbose_name = "uWSGI-compatible server"
