from django.apps import AppConfig


class DjangoUwsgiServerConfig(AppConfig):
    name = "django_uwsgi_server"
    verbose_name = "Server (runuwsgi)"  # the admin capitalizes: "UWSGI ..." otherwise
    # Fixed here so a project's DEFAULT_AUTO_FIELD never asks for a migration of this app.
    default_auto_field = "django.db.models.AutoField"
