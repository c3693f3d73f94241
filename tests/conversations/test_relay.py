"""The relay's pacing: at most STREAM_FRAMES_PER_SECOND delta frames in any second, the
first at once, and a reply's last text as soon as that rate allows (not an interval after
the frame before it)."""

import asyncio

import pytest

from conversations import tabs
from conversations.claude.streaming import DeltaRelay
from conversations.generations import Generation


@pytest.fixture
def frames(monkeypatch):
    """(loop time, text) of every delta frame the relay sends to the tabs."""
    sent: list[tuple[float, str]] = []

    async def deliver(conversation_id, event):
        sent.append((asyncio.get_running_loop().time(), event["text"]))

    monkeypatch.setattr(tabs, "deliver", deliver)
    return sent


def relay_for_test() -> tuple[DeltaRelay, asyncio.Task]:
    generation = Generation(reply_id=1, conversation_id=1)
    generation.announced.set()
    relay = DeltaRelay(generation, "conversation-1")
    relay.local_only = True  # the tabs of this process only: no channel layer needed
    return relay, asyncio.create_task(relay.run())


async def test_no_second_holds_more_frames_than_the_rate(frames, settings):
    settings.STREAM_FRAMES_PER_SECOND = 20
    relay, task = relay_for_test()
    for i in range(300):  # a delta every 5 ms for 1.5 s, then the end
        relay.push(f"{i} ")
        await asyncio.sleep(0.005)
    relay.close()
    await task

    times = [t for t, _ in frames]
    assert "".join(text for _, text in frames) == "".join(f"{i} " for i in range(300))
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert busiest <= 20
    assert busiest >= 18, "deltas this fast should fill the rate"


async def test_the_last_text_goes_at_once_when_the_rate_allows(frames, settings):
    settings.STREAM_FRAMES_PER_SECOND = 2  # a frame every 0.5 s while streaming
    relay, task = relay_for_test()
    loop = asyncio.get_running_loop()
    relay.push("Hello")
    await asyncio.sleep(0.05)
    relay.push(" world")
    ended = loop.time()
    relay.close()
    await task

    assert [text for _, text in frames] == ["Hello", " world"]
    assert frames[1][0] - ended < 0.2, "one earlier frame in the last second: no wait"


async def test_the_last_text_waits_while_the_last_second_is_full(frames, settings):
    settings.STREAM_FRAMES_PER_SECOND = 2
    relay, task = relay_for_test()
    relay.push("one")
    await asyncio.sleep(0.55)
    relay.push(" two")  # the second frame, an interval after the first
    await asyncio.sleep(0.05)
    relay.push(" three")
    relay.close()
    await task

    assert [text for _, text in frames] == ["one", " two", " three"]
    (first, _), (second, _), (last, _) = frames
    assert second - first >= 0.5
    assert last - first >= 1.0, "a third frame within the second of the first would exceed 2/s"
