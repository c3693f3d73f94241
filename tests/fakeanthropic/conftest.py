"""Fixtures for the fake Anthropic API tests: no Django, the real SDK as the client.

``client`` is parametrised: ``asgi`` runs the app in-process through
StreamingASGITransport, ``loopback`` talks HTTP to uvicorn on 127.0.0.1 (one server for
the session, delegating to the current test's app).
"""

from __future__ import annotations

import contextlib
from typing import Any

import anthropic
import httpx2
import pytest

from fakeanthropic import FakeAnthropic, fake_client_kwargs
from fakeanthropic.server import serve_in_thread

MODEL = "claude-sonnet-4-6"
KEY = "demo-key"


@pytest.fixture
def fake_api():
    """Shadow the suite-wide Django fixture of the same name: these tests need no Django."""
    return None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class _Delegate:
    """One loopback server for the session, serving whichever app the test set."""

    def __init__(self) -> None:
        self.target: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


@pytest.fixture(scope="session")
def loopback():
    delegate = _Delegate()
    base_url, stop = serve_in_thread(delegate)
    yield delegate, base_url
    stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(clock: FakeClock) -> FakeAnthropic:
    return FakeAnthropic(
        ttft=0.01,
        tokens_per_second=3000.0,
        tokens_per_delta=3,
        clock=clock,
        batch_seconds_per_request=1.0,
    )


@pytest.fixture(params=["asgi", "loopback"])
def transport_kind(request) -> str:
    return request.param


@pytest.fixture
async def make_client(app, transport_kind, request):
    """Factory: make_client(**AsyncAnthropic kwargs) -> client on the chosen transport."""
    made: list[anthropic.AsyncAnthropic] = []
    base_url = None
    if transport_kind == "loopback":
        delegate, base_url = request.getfixturevalue("loopback")
        delegate.target = app

    def make(**kwargs: Any) -> anthropic.AsyncAnthropic:
        kwargs.setdefault("api_key", KEY)
        kwargs.setdefault("max_retries", 0)
        if transport_kind == "asgi":
            kwargs.update(fake_client_kwargs(app))
        else:
            kwargs["base_url"] = base_url
        c = anthropic.AsyncAnthropic(**kwargs)
        made.append(c)
        return c

    yield make
    for c in made:
        with contextlib.suppress(Exception):
            await c.close()


@pytest.fixture
def client(make_client) -> anthropic.AsyncAnthropic:
    return make_client()


@pytest.fixture
async def raw(app, transport_kind, request):
    """A bare httpx2.AsyncClient on the same transport (for raw wire checks)."""
    if transport_kind == "asgi":
        kwargs = fake_client_kwargs(app)
        http = kwargs["http_client"]
    else:
        delegate, base_url = request.getfixturevalue("loopback")
        delegate.target = app
        http = httpx2.AsyncClient(base_url=base_url)
    yield http
    await http.aclose()


def user(text: str, **block_extra: Any) -> dict[str, Any]:
    if block_extra:
        return {"role": "user", "content": [{"type": "text", "text": text, **block_extra}]}
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}
