"""Helpers for the operations tests: a clean cache, and reading the metrics exposition."""

import uuid

import pytest
from django.core.cache import cache
from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "metrics-test-token-7f3a"


@pytest.fixture(autouse=True)
def clean_cache():
    """The window, the alert latch and the breaker state live in the cache."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    return METRICS_TOKEN


@pytest.fixture
def model():
    """A model name of this test only, so the process-wide counters start at zero for it."""
    return f"claude-test-{uuid.uuid4().hex[:8]}"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format; 0 when it is absent."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


def scrape(client, token: str = METRICS_TOKEN) -> str:
    response = client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    return response.content.decode()
