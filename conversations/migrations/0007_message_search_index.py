"""Superseded by 0008 (a stored search vector); kept so migration history stays linear.

It once built a GIN expression index, msg_content_search, which 0008 drops if present.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("conversations", "0006_seed_chat_models")]
    operations = []
