"""Admin: prices (editable, dated), the read-only ledger, budgets and the holds in flight."""

from __future__ import annotations

from django.contrib import admin

from billing.models import LedgerEntry, Price, Reservation, UserBudget, UserMonth


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = (
        "model",
        "effective_from",
        "input_usd",
        "cache_write_5m_usd",
        "cache_write_1h_usd",
        "cache_read_usd",
        "output_usd",
        "note",
    )
    list_filter = ("model",)
    search_fields = ("model",)
    fieldsets = (
        (None, {"fields": ("model", "effective_from", "note")}),
        (
            "USD per million tokens",
            {
                "fields": (
                    "input_usd",
                    "cache_write_5m_usd",
                    "cache_write_1h_usd",
                    "cache_read_usd",
                    "output_usd",
                ),
                "description": "List prices; Message Batches are billed at 50% of every line. "
                "A new row with a later date changes the price from that day on; calls "
                "already made keep the price in force when they were made.",
            },
        ),
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "purpose",
        "model",
        "status",
        "input_tokens",
        "cache_read_tokens",
        "output_tokens",
        "cost",
        "priced",
        "ttft_ms",
        "duration_ms",
    )
    list_filter = ("purpose", "status", "priced", "batch")
    list_select_related = ("user",)
    search_fields = ("request_id", "model", "user__username")
    raw_id_fields = ("user", "conversation", "message")
    show_full_result_count = False  # no COUNT(*) over millions of rows on every page
    change_list_template = "admin/billing/ledgerentry/change_list.html"


@admin.register(UserBudget)
class UserBudgetAdmin(admin.ModelAdmin):
    list_display = ("user", "monthly_usd", "note", "updated_at")
    search_fields = ("user__username", "user__email")
    raw_id_fields = ("user",)
    list_select_related = ("user",)


@admin.register(UserMonth)
class UserMonthAdmin(ReadOnlyAdmin):
    list_display = ("user", "month", "spent", "reserved")
    list_filter = ("month",)
    search_fields = ("user__username",)
    list_select_related = ("user",)
    show_full_result_count = False


@admin.register(Reservation)
class ReservationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "model", "purpose", "amount", "expires_at")
    list_select_related = ("user",)
    search_fields = ("user__username",)
