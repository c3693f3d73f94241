from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.conversation_list, name="conversation_list"),
    path("c/new/", views.conversation_new, name="conversation_new"),
    path("search/", views.conversation_search, name="conversation_search"),
    path("c/<int:conversation_id>/", views.conversation_detail, name="conversation_detail"),
    path(
        "c/<int:conversation_id>/rename/",
        views.conversation_rename,
        name="conversation_rename",
    ),
    path(
        "c/<int:conversation_id>/settings/",
        views.conversation_settings,
        name="conversation_settings",
    ),
    path(
        "c/<int:conversation_id>/document/",
        views.conversation_document,
        name="conversation_document",
    ),
    path(
        "c/<int:conversation_id>/m/<int:message_id>/raw/",
        views.message_raw,
        name="message_raw",
    ),
    path(
        "c/<int:conversation_id>/messages/",
        views.conversation_messages,
        name="conversation_messages",
    ),
    path(
        "c/<int:conversation_id>/export.md",
        views.conversation_export_markdown,
        name="conversation_export_markdown",
    ),
    path(
        "c/<int:conversation_id>/export.json",
        views.conversation_export_json,
        name="conversation_export_json",
    ),
    path(
        "c/<int:conversation_id>/delete/",
        views.conversation_delete,
        name="conversation_delete",
    ),
]
