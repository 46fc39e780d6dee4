"""The admin dashboard: a staff-only page showing the runuwsgi server (``dashboard``), the
JSON it polls (``stats``), and the reload buttons' POST target (``reload``).

Include it in a project's urls::

    path("uwsgi/", include("django_uwsgi_server.urls")),

Needs django.contrib.auth (and sessions) for ``request.user``. Staff see the page; sending a
reload also needs the ``django_uwsgi_server.reload_server`` permission, a CSRF token and a
POST. Every reload asked for is logged (logger ``django_uwsgi_server.dashboard``, WARNING so
it reaches the server's log without any LOGGING setup) with the user's name.
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_POST

from . import __version__, dashboard

PERMISSION = "django_uwsgi_server.reload_server"
POLL_SECONDS = 2
log = logging.getLogger("django_uwsgi_server.dashboard")


def _staff(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is None:
        raise PermissionDenied("the uWSGI dashboard needs django.contrib.auth's "
                               "AuthenticationMiddleware")
    return bool(user.is_active and user.is_staff)


def _admin_url(name: str) -> str | None:
    if not apps.is_installed("django.contrib.admin"):
        return None
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


@never_cache
@require_GET
def dashboard_view(request: HttpRequest) -> HttpResponse:
    if not _staff(request):
        if request.user.is_authenticated:
            raise PermissionDenied("staff only")
        login = _admin_url("admin:login") or settings.LOGIN_URL
        return redirect_to_login(request.get_full_path(), login)
    target = dashboard.find_target()
    can_reload = request.user.has_perm(PERMISSION)
    context: dict[str, Any] = {
        "data": dashboard.snapshot(target),
        "buttons": dashboard.buttons(target),
        "can_reload": can_reload,
        "permission": PERMISSION,
        "worker_columns": dashboard.WORKER_COLUMNS,
        "socket_columns": dashboard.SOCKET_COLUMNS,
        "messages": messages.get_messages(request),
        "admin_url": _admin_url("admin:index"),
        "poll_ms": POLL_SECONDS * 1000,
        "poll_seconds": POLL_SECONDS,
        "version": __version__,
        "stats_address": target.stats,
    }
    return render(request, "django_uwsgi_server/dashboard.html", context)


@never_cache
@require_GET
def stats_view(request: HttpRequest) -> JsonResponse:
    if not _staff(request):  # polled by a script: a plain 403, not a login redirect
        return JsonResponse({"error": "staff only"}, status=403)
    return JsonResponse(dashboard.snapshot(dashboard.find_target()))


@require_POST
@csrf_protect  # even if the project's middleware leaves CSRF out
def reload_view(request: HttpRequest) -> HttpResponse:
    if not _staff(request) or not request.user.has_perm(PERMISSION):
        raise PermissionDenied(f"reloading the server needs the permission {PERMISSION}")
    mode = request.POST.get("mode", "")
    if mode not in dashboard.MODES:
        return HttpResponseBadRequest(f"mode must be one of {', '.join(dashboard.MODES)}")
    user = request.user.get_username()
    try:
        line = dashboard.reload(dashboard.find_target(), mode)
    except dashboard.ReloadError as exc:
        log.error("%s reload asked by %s from the dashboard failed: %s", mode, user, exc)
        messages.error(request, f"Reload failed: {exc}", fail_silently=True)
    else:
        log.warning("%s reload asked by %s from the dashboard: %s", mode, user, line)
        messages.success(request, f"{line[0].upper()}{line[1:]}. New worker pids appear below as "
                                  f"the workers are replaced.", fail_silently=True)
    return redirect("django_uwsgi_server:dashboard")
