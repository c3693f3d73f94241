from django.urls import path

from review import controls, views

app_name = "review"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("items/<int:item_id>/", views.item_detail, name="item"),
    path("items/<int:item_id>/assign/", views.item_assign, name="item_assign"),
    path("items/<int:item_id>/flag/", views.item_flag, name="item_flag"),
    path("items/<int:item_id>/resolve/", views.item_resolve, name="item_resolve"),
    path("items/<int:item_id>/dismiss/", views.item_dismiss, name="item_dismiss"),
    path("items/<int:item_id>/reopen/", views.item_reopen, name="item_reopen"),
    path("conversations/<int:conversation_id>/", views.transcript, name="transcript"),
    path("replies/<int:message_id>/controls/", controls.reply_controls, name="reply_controls"),
    path("replies/<int:message_id>/rate/", controls.reply_rate, name="reply_rate"),
    path("replies/<int:message_id>/unrate/", controls.reply_unrate, name="reply_unrate"),
    path("replies/<int:message_id>/report/", controls.reply_report, name="reply_report"),
    path("replies/<int:message_id>/flag/", controls.reply_flag, name="reply_flag"),
]
