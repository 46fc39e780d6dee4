"""A model without a table: it carries the admin dashboard's permission
(``django_uwsgi_server.reload_server``) and its entry on the admin index."""

from django.db import models


class Server(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("reload_server", "Can reload the uWSGI server from the dashboard")]
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"

    def __str__(self) -> str:
        return "uWSGI server"
