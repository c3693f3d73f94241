"""Suite-wide set-up: Postgres, the fake Anthropic API on loopback, socket helpers."""

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
os.environ.pop("REDIS_URL", None)  # the suite's default channel layer is in-memory

multiprocessing.set_start_method("spawn", force=True)

import django  # noqa: E402
import pytest  # noqa: E402

django.setup()  # pytest-django then finds Django configured (no settings module in the ini)

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

    from conversations import streambuffer, throttle
    from conversations.claude.client import reset_clients

    settings.ANTHROPIC_BASE_URL = fake_server.base_url
    settings.ANTHROPIC_API_KEY = TEST_API_KEY
    settings.DEMO_MODE = False
    settings.CLAUDE_RETRY_BASE_DELAY = 0.01  # fast backoff; the policy is what's tested
    fake_server.reset()
    fake_server.configure(ttft=0.05, tokens_per_second=400.0)
    cache.clear()  # breaker state and limits start fresh
    reset_clients()
    throttle.reset()
    streambuffer.reset()
    yield fake_server
    reset_clients()
    throttle.reset()
    streambuffer.reset()


@pytest.fixture
def user(db):
    from tests.factories import UserFactory

    return UserFactory()


@pytest.fixture
def other_user(db):
    from tests.factories import UserFactory

    return UserFactory()
