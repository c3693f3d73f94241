"""Cost arithmetic against hand-computed figures: every model, every token kind, batches."""

import datetime as dt
from decimal import Decimal

import anthropic
import pytest

from billing.models import Price
from billing.pricing import cost_of
from billing.tokens import Tokens, usage_dict

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 15, 12, tzinfo=dt.UTC)
N = 1_234_567
KINDS = {
    "input": {"input_tokens": N},
    "cache_write_5m": {"cache_creation_input_tokens": N, "ephemeral_5m_input_tokens": N},
    "cache_write_1h": {"cache_creation_input_tokens": N, "ephemeral_1h_input_tokens": N},
    "cache_read": {"cache_read_input_tokens": N},
    "output": {"output_tokens": N},
}
# 1,234,567 tokens x the list price per million, rounded half up to the micro-dollar, by hand:
# e.g. Opus cache read 1,234,567 x 0.50 / 10^6 = 0.6172835 -> 0.617284.
EXPECTED = {
    "claude-opus-4-8": ("6.172835", "7.716044", "12.345670", "0.617284", "30.864175"),
    "claude-opus-4-5": ("6.172835", "7.716044", "12.345670", "0.617284", "30.864175"),
    "claude-sonnet-4-6": ("3.703701", "4.629626", "7.407402", "0.370370", "18.518505"),
    "claude-sonnet-4-5": ("3.703701", "4.629626", "7.407402", "0.370370", "18.518505"),
    "claude-haiku-4-5": ("1.234567", "1.543209", "2.469134", "0.123457", "6.172835"),
}
EXPECTED_BATCH = {
    "claude-opus-4-8": ("3.086418", "3.858022", "6.172835", "0.308642", "15.432088"),
    "claude-sonnet-4-6": ("1.851851", "2.314813", "3.703701", "0.185185", "9.259253"),
    "claude-haiku-4-5": ("0.617284", "0.771604", "1.234567", "0.061728", "3.086418"),
}


@pytest.mark.parametrize("model", EXPECTED)
@pytest.mark.parametrize("kind", range(5), ids=list(KINDS))
def test_each_token_kind_costs_its_list_price(model, kind):
    usage = list(KINDS.values())[kind]
    assert cost_of(model=model, usage=usage, at=NOW) == Decimal(EXPECTED[model][kind])


@pytest.mark.parametrize("model", EXPECTED_BATCH)
@pytest.mark.parametrize("kind", range(5), ids=list(KINDS))
def test_batch_calls_cost_half_of_every_line(model, kind):
    usage = list(KINDS.values())[kind]
    assert cost_of(model=model, usage=usage, batch=True, at=NOW) == Decimal(
        EXPECTED_BATCH[model][kind]
    )


def test_haiku_4_5_is_one_and_five_dollars_not_the_guides_claude_3_price():
    usage = {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    assert cost_of(model="claude-haiku-4-5", usage=usage, at=NOW) == Decimal("6.000000")


def test_a_mixed_call_is_the_sum_of_its_lines_rounded_once():
    # Sonnet: 2,113 x 3 + 1,500 x 3.75 + 700 x 6 + 40,000 x 0.30 + 517 x 15
    #       = 6,339 + 5,625 + 4,200 + 12,000 + 7,755 = 35,919 micro-dollars.
    usage = {
        "input_tokens": 2_113,
        "cache_creation_input_tokens": 2_200,
        "cache_creation": {"ephemeral_5m_input_tokens": 1_500, "ephemeral_1h_input_tokens": 700},
        "cache_read_input_tokens": 40_000,
        "output_tokens": 517,
    }
    assert cost_of(model="claude-sonnet-4-6", usage=usage, at=NOW) == Decimal("0.035919")
    # Seven cache-read tokens of Haiku are 0.7 micro-dollars: rounded half up, once.
    assert cost_of(model="claude-haiku-4-5", usage={"cache_read_input_tokens": 7}, at=NOW) == (
        Decimal("0.000001")
    )


def test_cache_writes_without_a_breakdown_are_5_minute_writes():
    tokens = Tokens.from_usage({"cache_creation_input_tokens": 1_000_000})
    assert tokens == Tokens(cache_write_5m=1_000_000)
    assert cost_of(model="claude-sonnet-4-6", usage=tokens, at=NOW) == Decimal("3.750000")


def test_an_unknown_model_has_no_price_never_a_guess():
    assert cost_of(model="claude-fable-5-2", usage={"output_tokens": 10}, at=NOW) is None


def test_a_dated_snapshot_uses_its_alias_price():
    usage = {"output_tokens": 1_000_000}
    assert cost_of(model="claude-haiku-4-5-20251001", usage=usage, at=NOW) == Decimal("5")
    assert cost_of(model="claude-haiku-4-5-preview", usage=usage, at=NOW) is None


def test_the_price_in_force_is_the_newest_from_on_or_before_the_day():
    Price.objects.create(
        model="claude-sonnet-4-6",
        effective_from=dt.date(2026, 12, 1),
        input_usd=Decimal("2.50"),
        cache_write_5m_usd=Decimal("3.125"),
        cache_write_1h_usd=Decimal("5"),
        cache_read_usd=Decimal("0.25"),
        output_usd=Decimal("12.50"),
    )
    usage = {"input_tokens": 1_000_000}
    on_nov_30 = dt.datetime(2026, 11, 30, 23, 59, 59, tzinfo=dt.UTC)
    assert cost_of(model="claude-sonnet-4-6", usage=usage, at=on_nov_30) == Decimal("3")
    assert cost_of(model="claude-sonnet-4-6", usage=usage, at=dt.date(2026, 12, 1)) == Decimal(
        "2.5"
    )
    # The day is the UTC day: 19:00 on Nov 30 in New York is already December in UTC.
    new_york = dt.timezone(dt.timedelta(hours=-5))
    late = dt.datetime(2026, 11, 30, 19, 30, tzinfo=new_york)
    assert cost_of(model="claude-sonnet-4-6", usage=usage, at=late) == Decimal("2.5")


def test_a_model_priced_only_from_a_later_day_is_unpriced_before_it():
    Price.objects.create(
        model="claude-fable-5-2",
        effective_from=dt.date(2027, 1, 1),
        input_usd=Decimal(8),
        cache_write_5m_usd=Decimal(10),
        cache_write_1h_usd=Decimal(16),
        cache_read_usd=Decimal("0.8"),
        output_usd=Decimal(40),
    )
    usage = {"output_tokens": 1_000_000}
    assert cost_of(model="claude-fable-5-2", usage=usage, at=NOW) is None
    assert cost_of(model="claude-fable-5-2", usage=usage, at=dt.date(2027, 1, 2)) == Decimal(40)


def test_usage_dict_reads_the_sdks_usage_object_with_its_cache_breakdown():
    usage = anthropic.types.Usage.model_validate(
        {
            "input_tokens": 31,
            "cache_creation_input_tokens": 2048,
            "cache_read_input_tokens": 4096,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 1024,
                "ephemeral_1h_input_tokens": 1024,
            },
            "output_tokens": 547,
            "service_tier": "standard",
        }
    )
    assert Tokens.from_usage(usage_dict(usage)) == Tokens(
        input=31, cache_write_5m=1024, cache_write_1h=1024, cache_read=4096, output=547
    )
