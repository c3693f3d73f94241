"""URL routes."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("review/", include("review.urls")),
    path("", include("conversations.urls")),
]
