from django.contrib import admin

from conversations.models import ChatModel, Conversation, Message, Preset


class SuperuserOnlyContent:
    """Message content is read by staff only through the audited review transcript."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(Conversation)
class ConversationAdmin(SuperuserOnlyContent, admin.ModelAdmin):
    list_display = ("title", "user", "model", "context_tokens", "budget", "updated_at")
    list_select_related = ("user",)
    search_fields = ("title", "user__username")
    raw_id_fields = ("user",)
    fieldsets = (
        (None, {"fields": ("user", "title", "model", "system_prompt")}),
        (
            "Conversation manager",
            {
                "description": "The token budget and where the context currently starts; "
                "older messages are still shown to the user but no longer sent to Claude.",
                "fields": (
                    "token_budget",
                    "context_start_id",
                    "context_tokens",
                    "prompt_overhead_tokens",
                    "total_input_tokens",
                    "total_cache_write_tokens",
                    "total_cache_read_tokens",
                    "total_output_tokens",
                ),
            },
        ),
    )
    readonly_fields = (
        "context_start_id",
        "context_tokens",
        "prompt_overhead_tokens",
        "total_input_tokens",
        "total_cache_write_tokens",
        "total_cache_read_tokens",
        "total_output_tokens",
    )


@admin.register(Message)
class MessageAdmin(SuperuserOnlyContent, admin.ModelAdmin):
    list_display = ("id", "conversation", "role", "status", "model", "output_tokens", "created_at")
    list_filter = ("role", "status", "model")
    list_select_related = ("conversation",)
    raw_id_fields = ("conversation",)


@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    list_display = ("model_id", "label", "enabled", "position")
    list_editable = ("enabled", "position")


@admin.register(Preset)
class PresetAdmin(admin.ModelAdmin):
    list_display = ("name", "model", "max_tokens", "enabled")
    list_filter = ("enabled",)
    search_fields = ("name", "system_prompt")
