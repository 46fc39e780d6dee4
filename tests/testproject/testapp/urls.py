from django.urls import path

from . import views

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
]
