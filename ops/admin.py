from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from ops.models import OperationsPanel
from ops.panel import panel_context


@admin.register(OperationsPanel)
class OperationsPanelAdmin(admin.ModelAdmin):
    """The Operations panel: a live page, not a list of rows."""

    def _staff(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._staff(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._staff(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self) -> list:
        """Only the panel: the model has no table, so no change, delete or history pages."""
        from django.urls import path

        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.changelist_view), name=name)]

    def changelist_view(self, request, extra_context=None) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Operations",
            "opts": self.model._meta,
            **panel_context(),
        }
        template = "admin/ops/panel.html"
        if getattr(request, "htmx", False):
            template += "#panel"
        return TemplateResponse(request, template, context)
