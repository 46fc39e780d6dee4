from django.apps import apps
from django.urls import include, path

from . import uwsgiviews, views

urlpatterns = [
    path("hello", views.hello),
    path("echo", views.echo),
    path("environ", views.environ),
    path("stream", views.stream),
    path("file", views.file),
    path("error", views.error),
    path("pid", views.pid),
    path("sleep", views.sleep),
    path("upload", views.upload),
    path("big", views.big),
    path("osenv", views.osenv),
    path("alloc", views.alloc),
    path("uwsgi/info", uwsgiviews.info),
    path("uwsgi/lock", uwsgiviews.lock),
    path("uwsgi/is_locked", uwsgiviews.is_locked),
    path("uwsgi/cache", uwsgiviews.cache),
    path("uwsgi/signal", uwsgiviews.raise_signal),
    path("uwsgi/register", uwsgiviews.register_here),
    path("uwsgi/harakiri", uwsgiviews.harakiri),
    path("uwsgi/unsupported", uwsgiviews.unsupported),
    path("uwsgi/procname", uwsgiviews.procname),
    path("uwsgi/control", uwsgiviews.control),
]

if apps.is_installed("django.contrib.admin"):  # TEST_DASHBOARD (see the settings)
    from django.contrib import admin

    urlpatterns += [path("admin/", admin.site.urls),
                    path("uwsgi/", include("django_uwsgi_server.urls"))]
