"""The admin dashboard's URLs: ``path("uwsgi/", include("django_uwsgi_server.urls"))``."""

from django.urls import path

from . import views

app_name = "django_uwsgi_server"
urlpatterns = [
    path("", views.dashboard_view, name="dashboard"),
    path("stats.json", views.stats_view, name="stats"),
    path("reload/", views.reload_view, name="reload"),
]
