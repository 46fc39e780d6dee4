import sys

from django.apps import AppConfig


class DjangoUwsgiServerConfig(AppConfig):
    name = "django_uwsgi_server"
    verbose_name = "uWSGI-compatible server"

    def __init__(self, app_name: str, app_module: object) -> None:
        super().__init__(app_name, app_module)
        # Under runuwsgi, `import uwsgi` must work in the other apps' models and ready().
        from .compat.runtime import early_install

        early_install(sys.argv)
