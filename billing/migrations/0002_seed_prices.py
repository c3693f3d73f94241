"""Seed the price table with the list prices (USD per million tokens) in anthropic-api.md."""

import datetime
from decimal import Decimal

from django.db import migrations

EFFECTIVE_FROM = datetime.date(2025, 1, 1)
# input, cache write 5m, cache write 1h, cache read, output
OPUS = ("5.00", "6.25", "10.00", "0.50", "25.00")
SONNET = ("3.00", "3.75", "6.00", "0.30", "15.00")
HAIKU = ("1.00", "1.25", "2.00", "0.10", "5.00")  # not the guide's $0.25/$1.25 (Claude 3 Haiku)
LIST_PRICES = {
    "claude-opus-4-8": OPUS,
    "claude-opus-4-7": OPUS,
    "claude-opus-4-6": OPUS,
    "claude-opus-4-5": OPUS,
    "claude-sonnet-4-6": SONNET,
    "claude-sonnet-4-5": SONNET,
    "claude-haiku-4-5": HAIKU,
}
NOTE = "List price (seeded)"


def seed(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    for model, (inp, w5m, w1h, read, out) in LIST_PRICES.items():
        Price.objects.get_or_create(
            model=model,
            effective_from=EFFECTIVE_FROM,
            defaults={
                "input_usd": Decimal(inp),
                "cache_write_5m_usd": Decimal(w5m),
                "cache_write_1h_usd": Decimal(w1h),
                "cache_read_usd": Decimal(read),
                "output_usd": Decimal(out),
                "note": NOTE,
            },
        )


def unseed(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    Price.objects.filter(model__in=LIST_PRICES, effective_from=EFFECTIVE_FROM, note=NOTE).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
