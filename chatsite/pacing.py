"""Frame pacing shared by the chat's relay and the bench's bare relay (no Django here).

At most `rate` frames a second, the first at once. While text streams, frames are at least
an interval apart; the last text goes as soon as no second would then hold more than the
rate's frames (at once for a reply of fewer frames than that).

A frame the rate allows is sent from `push`, in the task that read the text, by a task
started eagerly (`asyncio.eager_task_factory`): when sending never waits, the frame is out
before `push` returns, with no wake-up of another task, no timer and no turn of the event
loop (each of those was a callback of the loop per delta, and under load the first delta's
frame waited a turn of the busy loop). Text that comes within the interval waits for one
timer, armed once for all of it. A send that does wait (Redis) goes on as its own task:
text pushed meanwhile goes after it, and cancelling the task that pushed (a stop) does not
cut it in half. A send that fails is logged, and the frames after it still go.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

logger = logging.getLogger(__name__)


class FramePacer:
    """Subclasses send one frame's text in `_frame`; with `held`, no frame goes before
    `release()` (the app's relay: not before the tabs know the reply)."""

    label = "a stream"  # in the log of a failed send

    def __init__(self, rate: float, *, held: bool = False) -> None:
        self.interval = 1.0 / rate
        self.loop = asyncio.get_running_loop()
        # When the latest frames went (loop time): as many as a second may hold.
        self.sent_at: deque[float] = deque(maxlen=max(int(rate), 1))
        self.pending: list[str] = []
        self.next_at = 0.0  # loop time before which no frame may go
        self.closed = False
        self.held = held
        self._timer: asyncio.TimerHandle | None = None  # the paced frame's
        self._sending: asyncio.Task[None] | None = None  # a send that is waiting
        self._drained: asyncio.Future[None] = self.loop.create_future()

    async def _frame(self, text: str) -> None:
        raise NotImplementedError

    def push(self, text: str) -> None:
        self.pending.append(text)
        if self._timer is None and self._sending is None and not self.held:
            self._next_frame()

    def release(self) -> None:
        """Frames may go from now on."""
        self.held = False
        if self._timer is None and self._sending is None:
            self._next_frame()

    def close(self) -> None:
        """No more text: send what is pending as soon as the rate allows, then drain."""
        if self.closed:
            return
        self.closed = True
        if self._sending is None and not self.held:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._next_frame()

    async def drained(self) -> None:
        """Wait until the pacer is closed and all of its text was sent."""
        await self._drained

    def _next_frame(self) -> None:
        """Send pending text now if the rate allows, else arm the timer for when it does."""
        if not self.pending:
            if self.closed and not self._drained.done():
                self._drained.set_result(None)
            return
        now = self.loop.time()
        due = self.next_at
        if self.closed:
            # The last text: as soon as the rate allows (at once unless the last second
            # already holds as many frames as it may).
            full = len(self.sent_at) == self.sent_at.maxlen
            due = self.sent_at[0] + 1.0 if full else now
        if due > now:
            self._timer = self.loop.call_at(due, self._due)
            return
        send = asyncio.eager_task_factory(self.loop, self._send())
        if not send.done():
            self._sending = send  # it waits: the next frame after it
            send.add_done_callback(self._sent)
        else:
            self._settled(send)

    def _due(self) -> None:
        self._timer = None
        if self._sending is None:
            self._next_frame()

    def _sent(self, send: asyncio.Task[None]) -> None:
        self._sending = None
        self._settled(send)

    def _settled(self, send: asyncio.Task[None]) -> None:
        error = None if send.cancelled() else send.exception()
        if error is not None:  # the frames after it still go
            logger.warning("a frame of %s was not sent", self.label, exc_info=error)
        if self.pending and not self.closed:
            if self._timer is None:
                self._timer = self.loop.call_at(self.next_at, self._due)
        elif self._timer is None:
            self._next_frame()

    async def _send(self) -> None:
        text = "".join(self.pending)
        self.pending.clear()
        now = self.loop.time()
        self.sent_at.append(now)
        self.next_at = now + self.interval
        await self._frame(text)
