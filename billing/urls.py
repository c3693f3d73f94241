from django.contrib import admin
from django.urls import path

from billing import views

urlpatterns = [
    path("usage/", views.my_usage, name="my_usage"),
    path(
        "admin/billing/dashboard/",
        admin.site.admin_view(views.spend_dashboard),
        name="billing_dashboard",
    ),
    path(
        "admin/billing/dashboard/users.csv",
        admin.site.admin_view(views.spend_by_user_csv),
        name="billing_dashboard_csv",
    ),
]
