from django.db import migrations

MODELS = [
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", 0),
    ("claude-haiku-4-5", "Claude Haiku 4.5", 1),
    ("claude-opus-4-8", "Claude Opus 4.8", 2),
]


def seed(apps, schema_editor):
    chat_model = apps.get_model("conversations", "ChatModel")
    for model_id, label, position in MODELS:
        chat_model.objects.get_or_create(
            model_id=model_id, defaults={"label": label, "position": position}
        )


class Migration(migrations.Migration):
    dependencies = [("conversations", "0005_models_presets_documents")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
