"""The in-memory channel layer (one process, no Redis), without its per-message sweep."""

from __future__ import annotations

import asyncio
import time

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class SweepingInMemoryChannelLayer(InMemoryChannelLayer):
    """Channels' in-memory layer walks every channel and group on every send and receive
    to expire old messages; with hundreds of sockets that dominates the cost of relaying a
    delta. This one sweeps at most once a second (expiry is 60 s, so nothing changes for
    correctness) and delivers a group message without a task (or a deep copy) per member."""

    sweep_interval = 1.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._swept_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < self.sweep_interval:
            return
        self._swept_at = now
        super()._clean_expired()

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        expires = time.time() + self.expiry
        for channel in list(self.groups.get(group, {})):
            queue = self.channels.setdefault(
                channel, asyncio.Queue(maxsize=self.get_capacity(channel))
            )
            try:
                # A shallow copy: our events hold only str/int values, so a deep copy per
                # member (the base layer's) buys nothing and costs a walk of the event.
                queue.put_nowait((expires, dict(message)))
            except asyncio.QueueFull:
                pass  # a full channel drops the message, as the base layer does
            except ChannelFull:
                pass
