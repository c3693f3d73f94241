"""Message content's search vector, stored, with a GIN index on it (Postgres only).

A stored generated column rather than an expression index: ranking reads the vector
instead of parsing every matching message again (a common word matched thousands of
messages and cost seconds). The column is not a model field, so Django never selects it
and SQLite (which cannot build it) never sees it; conversations.search reads it by name.
A later change of `content`'s type must drop and re-add the column.
"""

from django.db import migrations

FORWARDS = [
    "ALTER TABLE conversations_message ADD COLUMN IF NOT EXISTS search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('english'::regconfig, COALESCE(content, ''::text))) STORED",
    "CREATE INDEX IF NOT EXISTS msg_search_vector ON conversations_message "
    "USING gin (search_vector)",
    "DROP INDEX IF EXISTS msg_content_search",
]
BACKWARDS = [
    "DROP INDEX IF EXISTS msg_search_vector",
    "ALTER TABLE conversations_message DROP COLUMN IF EXISTS search_vector",
]


def run(statements):
    def operation(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return operation


class Migration(migrations.Migration):
    dependencies = [("conversations", "0007_message_search_index")]
    operations = [migrations.RunPython(run(FORWARDS), run(BACKWARDS), elidable=False)]
