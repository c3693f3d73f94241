"""Message.conversation loses its own index: msg_conv_order (conversation_id, id) serves every
lookup by conversation (see the field's comment).

Only the index is dropped: Django's AlterField would also drop and re-add the foreign key,
and re-adding it checks every message row under a lock.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "conversations_message_conversation_id_f1a2d5e9"


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0008_message_search_vector"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="conversation",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="messages",
                        to="conversations.conversation",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f"DROP INDEX IF EXISTS {INDEX}",
                    reverse_sql=f"CREATE INDEX {INDEX} ON conversations_message (conversation_id)",
                ),
            ],
        ),
    ]
