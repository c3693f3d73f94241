from django.contrib import admin

from batches.models import BatchJob, ProviderBatch


class ProviderBatchInline(admin.TabularInline):
    model = ProviderBatch
    extra = 0
    can_delete = False
    fields = ("index", "state", "provider_id", "processing_status", "request_counts", "size")
    readonly_fields = fields


@admin.register(BatchJob)
class BatchJobAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "user", "mode", "model", "status", "row_count", "created_at")
    list_filter = ("status", "mode", "model")
    search_fields = ("name", "user__username")
    readonly_fields = [f.name for f in BatchJob._meta.fields]
    inlines = [ProviderBatchInline]

    def has_add_permission(self, request) -> bool:
        return False
