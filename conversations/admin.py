from django.contrib import admin

from conversations.models import Conversation, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("title", "user", "model", "updated_at")
    list_select_related = ("user",)
    search_fields = ("title", "user__username")
    raw_id_fields = ("user",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "conversation", "role", "status", "model", "output_tokens", "created_at")
    list_filter = ("role", "status", "model")
    list_select_related = ("conversation",)
    raw_id_fields = ("conversation",)
