from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # The server dashboard (staff only; on the admin index: "Server (runuwsgi)" > "Dashboard").
    path("uwsgi/", include("django_uwsgi_server.urls")),
    path("", include("shop.urls")),
]
