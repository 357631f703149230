from django.contrib import admin
from django.urls import include, path

from realtime import ops

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", include("reviews.api.urls")),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics_view, name="metrics"),
    path("", include("reviews.urls")),
]
