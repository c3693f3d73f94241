"""The chat's rate limits are sliding window counters: two numbers per limit, whatever a
request costs (conversations.throttle)."""

import pytest

from conversations import throttle


@pytest.fixture(autouse=True)
def fresh_limits(settings):
    settings.REDIS_URL = ""  # this process's memory
    throttle.reset()
    yield
    throttle.reset()


async def test_a_request_of_many_tokens_is_counted_not_stored_token_by_token(settings):
    settings.RATE_LIMIT_USER_TOKENS = "1000000/hour"
    settings.RATE_LIMIT_GLOBAL_TOKENS = "20000000/hour"

    await throttle.check_rate_limits(user_id=7, tokens=50_000)

    storage = throttle.limiter().storage
    # A moving window kept an entry per token (50,000 here, per limit), and its expiry sweep
    # held each limit's lock across a hop to a thread.
    assert storage.events == {}
    counts = sorted(storage.storage.values())
    assert counts == [1, 1, 50_000, 50_000]  # requests and tokens, the user's and everyone's


async def test_what_is_left_of_a_window_is_what_a_request_may_use(settings):
    settings.RATE_LIMIT_USER_TOKENS = "100000/hour"
    await throttle.check_rate_limits(user_id=7, tokens=60_000)
    with pytest.raises(throttle.RateLimited) as refused:
        await throttle.check_rate_limits(user_id=7, tokens=40_001)
    assert refused.value.scope == "user"
    assert "You are sending too many tokens right now" in str(refused.value)
    await throttle.check_rate_limits(user_id=7, tokens=40_000)  # the refusal used up nothing
    await throttle.check_rate_limits(user_id=8, tokens=100_000)  # another user's own window


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "1 second"),
        (45, "45 seconds"),
        (89.5, "90 seconds"),
        (90, "2 minutes"),
        (2633, "44 minutes"),
        (7199, "120 minutes"),
        (7200, "2 hours"),
        (86_000, "24 hours"),
    ],
)
def test_the_wait_is_said_in_the_unit_a_person_would_use(seconds, text):
    assert throttle.wait_text(seconds) == text
