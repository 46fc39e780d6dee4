import sys

from django.apps import AppConfig


class DjangoUwsgiServerConfig(AppConfig):
    name = "django_uwsgi_server"
    verbose_name = "Server (runuwsgi)"  # the admin capitalizes: "UWSGI ..." otherwise
    # Fixed here so a project's DEFAULT_AUTO_FIELD never asks for a migration of this app.
    default_auto_field = "django.db.models.AutoField"

    def __init__(self, app_name: str, app_module: object) -> None:
        super().__init__(app_name, app_module)
        # Under runuwsgi, `import uwsgi` must work in the other apps' models and ready().
        from .compat.runtime import early_install

        early_install(sys.argv)
