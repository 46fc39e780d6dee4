"""The dashboard's entry on the admin index: the table-less ``Server`` model, whose only page
sends staff to the dashboard (when the project's urls include it) and says how to include it
otherwise."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, path, reverse

from .models import Server


@admin.register(Server)
class ServerAdmin(admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list:
        # Only the changelist: the model has no table, so no object page may exist.
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        try:
            return HttpResponseRedirect(reverse("django_uwsgi_server:dashboard"))
        except NoReverseMatch:
            return HttpResponse(
                "The uWSGI dashboard is not in this project's URLs. Add "
                "path(\"uwsgi/\", include(\"django_uwsgi_server.urls\")) to urlpatterns.",
                content_type="text/plain; charset=utf-8", status=404)
