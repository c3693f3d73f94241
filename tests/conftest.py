"""Suite-wide set-up: Postgres, the fake Anthropic API on loopback, socket helpers."""

import asyncio
import multiprocessing
import os

# Settings are read from the environment when Django starts, after this module loads.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chatsite")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-test-4d1f5c0ffee")
os.environ.setdefault("DATABASE_POOL", "false")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault(
    "BUDGET_RELEASE_STALE_MINUTES", "0"
)  # no task queued by the test DB's migrate
os.environ.pop("REDIS_URL", None)  # the suite's default channel layer is in-memory
# Many tests log in and sign up from 127.0.0.1; tests of these limits set their own.
for _limit in ("RATE_LIMIT_LOGIN", "RATE_LIMIT_SIGNUP", "RATE_LIMIT_COSTLY"):
    os.environ.setdefault(_limit, "10000/minute")

multiprocessing.set_start_method("spawn", force=True)

import django  # noqa: E402
import pytest  # noqa: E402

django.setup()  # pytest-django then finds Django configured (no settings module in the ini)

from django.conf import settings as django_settings  # noqa: E402

# The suite's users are hashed with few iterations (tests/hashers.py); the app's hashers stay.
django_settings.PASSWORD_HASHERS = [
    "tests.hashers.FastPBKDF2PasswordHasher",
    *django_settings.PASSWORD_HASHERS,
]

from fakeanthropic import FakeAnthropic  # noqa: E402
from fakeanthropic.server import serve_in_thread  # noqa: E402

TEST_API_KEY = os.environ["ANTHROPIC_API_KEY"]


@pytest.fixture(scope="session")
def fake_server():
    """The fake Anthropic API served by uvicorn on a loopback port for the whole run."""
    app = FakeAnthropic(ttft=0.05, tokens_per_second=400.0, api_key=TEST_API_KEY)
    base_url, stop = serve_in_thread(app)
    app.base_url = base_url
    yield app
    stop()


@pytest.fixture(autouse=True)
def fake_api(fake_server, settings):
    """Point the app at the loopback fake API with a clean script for every test."""
    from django.core.cache import cache

    from billing.pricing import forget_prices
    from conversations import streambuffer, throttle
    from conversations.claude.client import reset_clients

    settings.ANTHROPIC_BASE_URL = fake_server.base_url
    settings.ANTHROPIC_API_KEY = TEST_API_KEY
    settings.DEMO_MODE = False
    settings.CLAUDE_RETRY_BASE_DELAY = 0.01  # fast backoff; the policy is what's tested
    fake_server.reset()
    fake_server.configure(ttft=0.05, tokens_per_second=400.0)
    cache.clear()  # breaker state and limits start fresh
    forget_prices()  # prices re-seeded or edited with update() are read again
    reset_clients()
    throttle.reset()
    streambuffer.reset()
    yield fake_server
    reset_clients()
    throttle.reset()
    streambuffer.reset()


@pytest.fixture(autouse=True)
async def close_claude_client(fake_api):
    """Close the test loop's Claude client while that loop still runs: its aiohttp session
    belongs to it (torn down before `fake_api`, which it depends on); and the connections
    of the ORM threads."""
    yield
    from chatsite.db import close_orm_connections
    from conversations.claude.client import aclose_client

    await aclose_client()
    await asyncio.to_thread(close_orm_connections)  # a test database may be dropped next


@pytest.fixture
def user(db):
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def other_user(db):
    from tests.factories import UserFactory

    return UserFactory()


# Data migrations seed reference rows (list prices, enabled models, the reviewers group);
# a transactional test's flush deletes them, so tests with database access re-seed them
# with the migrations' own (idempotent) functions.
SEEDS = (
    ("billing.migrations.0002_seed_prices", "seed"),
    ("conversations.migrations.0006_seed_chat_models", "seed"),
    ("review.migrations.0002_reviewers_group", "create_group"),
)


@pytest.fixture(autouse=True)
def reference_data(request):
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in names or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in names or marker:
        request.getfixturevalue("db")
    else:
        return
    import importlib

    from django.apps import apps

    for module, function in SEEDS:
        getattr(importlib.import_module(module), function)(apps, None)
