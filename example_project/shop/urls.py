from django.urls import path

from . import views

app_name = "shop"

urlpatterns = [
    path("", views.item_list, name="item_list"),
    path("api/items/", views.api_items, name="api_items"),
    path("download/", views.download, name="download"),
    path("stream/", views.stream, name="stream"),
    path("bench/plain", views.bench_plain, name="bench_plain"),
    path("bench/template", views.bench_template, name="bench_template"),
    path("bench/db", views.bench_db, name="bench_db"),
    path("bench/upload", views.bench_upload, name="bench_upload"),
    path("bench/download", views.bench_download, name="bench_download"),
]
