"""URL routes."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("billing.urls")),  # /usage/, /admin/billing/dashboard/ (before admin)
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("review/", include("review.urls")),
    path("batches/", include("batches.urls")),
    path("", include("ops.urls")),  # /healthz, /readyz, /metrics
    path("", include("conversations.urls")),
]
