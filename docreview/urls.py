from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views import defaults

from realtime import ops

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("reviews.api.urls")),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("", include("reviews.urls")),
]


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    """A URL under ``/api/`` that matches nothing answers as every API 404 does."""
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    """An unexpected error under ``/api/`` answers in JSON too."""
    if _is_api(request):
        return JsonResponse({"detail": "A server error occurred."}, status=500)
    return defaults.server_error(request)


handler404 = not_found
handler500 = server_error
