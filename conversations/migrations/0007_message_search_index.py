"""A GIN index for full-text search of message content, on Postgres only.

The expression matches what conversations.search filters on:
SearchVector("content", config="english"). It lives here rather than in Message.Meta
because SQLite cannot build it, and SQLite rebuilds tables with every Meta index.
"""

from django.db import migrations

CREATE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS msg_content_search ON conversations_message "
    "USING gin (to_tsvector('english'::regconfig, COALESCE(content, ''::text)))"
)
DROP = "DROP INDEX CONCURRENTLY IF EXISTS msg_content_search"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY: no table lock on a large message table
    dependencies = [("conversations", "0006_seed_chat_models")]
    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
