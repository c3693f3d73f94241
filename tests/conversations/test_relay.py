"""The relay's pacing: at most STREAM_FRAMES_PER_SECOND delta frames in any second, the
first at once, and a reply's last text as soon as that rate allows (not an interval after
the frame before it); a frame the rate allows is sent by `push` itself. And a reply's task
starts eagerly."""

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


def relay_for_test(*, announced: bool = True) -> DeltaRelay:
    generation = Generation(reply_id=1, conversation_id=1)
    if announced:
        generation.announced.set()
    relay = DeltaRelay(generation, "conversation-1")
    relay.local_only = True  # the tabs of this process only: no channel layer needed
    return relay


async def test_no_second_holds_more_frames_than_the_rate(frames, settings):
    settings.STREAM_FRAMES_PER_SECOND = 20
    relay = relay_for_test()
    for i in range(300):  # a delta every 5 ms for 1.5 s, then the end
        relay.push(f"{i} ")
        await asyncio.sleep(0.005)
    relay.close()
    await relay.drained()

    times = [t for t, _ in frames]
    assert "".join(text for _, text in frames) == "".join(f"{i} " for i in range(300))
    busiest = max(sum(1 for u in times if t <= u < t + 1.0) for t in times)
    assert busiest <= 20
    assert busiest >= 18, "deltas this fast should fill the rate"


async def test_the_last_text_goes_at_once_when_the_rate_allows(frames, settings):
    settings.STREAM_FRAMES_PER_SECOND = 2  # a frame every 0.5 s while streaming
    relay = relay_for_test()
    loop = asyncio.get_running_loop()
    relay.push("Hello")
    await asyncio.sleep(0.05)
    relay.push(" world")
    ended = loop.time()
    relay.close()
    await relay.drained()

    assert [text for _, text in frames] == ["Hello", " world"]
    assert frames[1][0] - ended < 0.2, "one earlier frame in the last second: no wait"


async def test_the_last_text_waits_while_the_last_second_is_full(frames, settings):
    settings.STREAM_FRAMES_PER_SECOND = 2
    relay = relay_for_test()
    relay.push("one")
    await asyncio.sleep(0.55)
    relay.push(" two")  # the second frame, an interval after the first
    await asyncio.sleep(0.05)
    relay.push(" three")
    relay.close()
    await relay.drained()

    assert [text for _, text in frames] == ["one", " two", " three"]
    (first, _), (second, _), (last, _) = frames
    assert second - first >= 0.5
    assert last - first >= 1.0, "a third frame within the second of the first would exceed 2/s"


async def test_a_frame_the_rate_allows_is_sent_by_push_itself(frames, settings):
    """No wake-up of another task, no timer: the frame is out before `push` returns."""
    settings.STREAM_FRAMES_PER_SECOND = 20
    relay = relay_for_test()
    relay.push("first")
    assert [text for _, text in frames] == ["first"]
    await asyncio.sleep(0.06)  # more than an interval later
    relay.push(" second")
    assert [text for _, text in frames] == ["first", " second"]
    relay.push(" third")  # within the interval: paced
    assert len(frames) == 2
    relay.close()
    await relay.drained()
    assert [text for _, text in frames] == ["first", " second", " third"]


async def test_no_frame_before_the_tabs_know_the_reply(frames, settings):
    settings.STREAM_FRAMES_PER_SECOND = 20
    relay = relay_for_test(announced=False)
    relay.push("early")
    relay.push(" text")
    await asyncio.sleep(0.1)
    assert frames == []
    relay.generation.announced.set()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [text for _, text in frames] == ["early text"]
    relay.close()
    await relay.drained()


async def test_a_send_that_waits_keeps_the_order_and_survives_a_stop(monkeypatch, settings):
    """With Redis a send waits; text pushed meanwhile goes after it, and cancelling the task
    that pushed (a stop) does not cut the send short."""
    settings.STREAM_FRAMES_PER_SECOND = 1000
    sent: list[str] = []
    release = asyncio.Event()

    async def deliver(conversation_id, event):
        await release.wait()
        sent.append(event["text"])

    monkeypatch.setattr(tabs, "deliver", deliver)
    relay = relay_for_test()

    async def reader():
        relay.push("a")
        relay.push("b")
        await asyncio.sleep(10)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.01)
    task.cancel()
    relay.push("c")
    relay.close()
    release.set()
    await asyncio.wait_for(relay.drained(), 2)
    assert sent == ["a", "bc"]


async def test_a_reply_task_runs_up_to_its_first_wait_when_started():
    """The reply's task starts eagerly: its request is on its way before `start` returns,
    not a turn of the event loop later."""
    from conversations.generations import generations

    steps: list[str] = []

    async def reply() -> None:
        steps.append("request sent")
        await asyncio.sleep(0)
        steps.append("streaming")

    task = generations.start(Generation(reply_id=10**9, conversation_id=10**9), reply())
    assert steps == ["request sent"]
    await task
    assert steps == ["request sent", "streaming"]
    await asyncio.sleep(0)  # the registry's done callback
    assert generations.get(10**9) is None


async def test_a_send_that_fails_does_not_stop_the_frames_after_it(monkeypatch, settings, caplog):
    settings.STREAM_FRAMES_PER_SECOND = 1000
    sent: list[str] = []

    async def deliver(conversation_id, event):
        if not sent and event["text"] == "lost":
            sent.append("")  # fail once
            raise ConnectionError("Redis went away")
        sent.append(event["text"])

    monkeypatch.setattr(tabs, "deliver", deliver)
    relay = relay_for_test()
    relay.push("lost")
    await asyncio.sleep(0.01)
    relay.push("kept")
    relay.close()
    await asyncio.wait_for(relay.drained(), 2)
    assert sent == ["", "kept"]
    assert "a frame of reply 1 was not sent" in caplog.text
