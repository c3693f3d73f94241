from django.contrib import admin

from conversations.models import Conversation, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
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
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "role", "status", "model", "output_tokens", "created_at")
    list_filter = ("role", "status", "model")
    list_select_related = ("conversation",)
    raw_id_fields = ("conversation",)
