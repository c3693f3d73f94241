"""Admin: ratings and review items (with JSONL export), and the read-only audit log."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path
from django.utils import timezone

from review.access import EXPORT_PERMISSION
from review.export import exported_replies, jsonl_lines
from review.management.commands.export_reviews import parse_since
from review.models import AuditLog, Flag, Rating, ReviewItem


def jsonl_response(request, replies, *, detail: str) -> HttpResponse:
    """Stream replies as a JSONL download and write the export to the audit log."""
    count = replies.count()
    AuditLog.record(
        actor=request.user,
        view=AuditLog.View.EXPORT_ADMIN,
        path=request.get_full_path(),
        detail=f"{count} replies; {detail}",
    )
    response = StreamingHttpResponse(jsonl_lines(replies), content_type="application/jsonl")
    name = f"reviews-{timezone.now():%Y%m%d-%H%M%S}.jsonl"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class ExportMixin:
    """The "export as JSONL" action, for users with the export permission."""

    actions = ["export_jsonl"]

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm(EXPORT_PERMISSION)

    def replies_of(self, queryset):
        raise NotImplementedError

    @admin.action(permissions=["export"], description="Export selected replies as JSONL")
    def export_jsonl(self, request, queryset):
        ids = self.replies_of(queryset)
        replies = exported_replies().filter(pk__in=ids)
        return jsonl_response(request, replies, detail="selected in the admin")


@admin.register(Rating)
class RatingAdmin(ExportMixin, admin.ModelAdmin):
    list_display = ("id", "value", "message", "user", "comment", "updated_at")
    list_filter = ("value",)
    list_select_related = ("message", "user")
    raw_id_fields = ("message", "user")
    search_fields = ("comment", "user__username")

    def replies_of(self, queryset):
        return queryset.values("message_id")


class FlagInline(admin.TabularInline):
    model = Flag
    extra = 0
    fields = ("source", "category", "note", "created_by", "created_at")
    readonly_fields = ("created_by", "created_at")


@admin.register(ReviewItem)
class ReviewItemAdmin(ExportMixin, admin.ModelAdmin):
    list_display = ("id", "message", "state", "assignee", "created_at", "closed_at")
    list_filter = ("state", "flags__category")
    list_select_related = ("message", "assignee")
    raw_id_fields = ("message", "conversation", "assignee", "closed_by")
    readonly_fields = ("message", "conversation", "created_at", "updated_at")
    inlines = [FlagInline]
    change_list_template = "admin/review/reviewitem/change_list.html"

    def replies_of(self, queryset):
        return queryset.values("message_id")

    def get_urls(self):
        urls = [
            path(
                "export/",
                self.admin_site.admin_view(self.export_all_view),
                name="review_reviewitem_export",
            )
        ]
        return urls + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        extra = {"can_export": self.has_export_permission(request)} | (extra_context or {})
        return super().changelist_view(request, extra_context=extra)

    def export_all_view(self, request):
        """Every rated or flagged reply (optionally labelled since ?since=YYYY-MM-DD)."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        since = request.GET.get("since") or ""
        try:
            moment = parse_since(since) if since else None
        except ValueError:
            return HttpResponse("since must be a date (YYYY-MM-DD).", status=400)
        detail = f"all since {since}" if since else "all"
        return jsonl_response(request, exported_replies(moment), detail=detail)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: nobody adds, edits or deletes audit rows, not even admins."""

    list_display = (
        "created_at",
        "actor_username",
        "view",
        "conversation_id",
        "message_id",
        "owner_id",
        "detail",
    )
    list_filter = ("view",)
    search_fields = ("actor_username", "=conversation_id", "=message_id")
    date_hierarchy = "created_at"
    readonly_fields = [field.name for field in AuditLog._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
