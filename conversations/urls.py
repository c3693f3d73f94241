from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.conversation_list, name="conversation_list"),
    path("c/new/", views.conversation_new, name="conversation_new"),
    path("c/<int:conversation_id>/", views.conversation_detail, name="conversation_detail"),
    path(
        "c/<int:conversation_id>/rename/",
        views.conversation_rename,
        name="conversation_rename",
    ),
    path(
        "c/<int:conversation_id>/delete/",
        views.conversation_delete,
        name="conversation_delete",
    ),
]
