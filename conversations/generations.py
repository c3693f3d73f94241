"""Replies being generated in this process: owned here, not by any socket."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass
class Generation:
    """A reply in progress: its task and the text generated so far."""

    reply_id: int
    conversation_id: int
    parts: list[str] = field(default_factory=list)
    length: int = 0
    task: asyncio.Task[None] | None = None
    started: float = field(default_factory=time.monotonic)
    # Set once the tabs were told about the reply: its frames wait for it (the call to Claude
    # goes out first, the tabs are told while it is on its way).
    announced: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def resuming(cls, *, reply_id: int, conversation_id: int, text: str) -> Generation:
        """A generation that continues a reply which already has text."""
        generation = cls(reply_id=reply_id, conversation_id=conversation_id)
        if text:
            generation.append(text)
        return generation

    def cancel(self) -> None:
        """Stop the reply (safe from any thread: a sync view may ask)."""
        if self.task is not None:
            self.task.get_loop().call_soon_threadsafe(self.task.cancel)

    def append(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    @property
    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""


class Generations:
    """Registry of this process's running replies; closing a socket does not touch them."""

    def __init__(self) -> None:
        self._running: dict[int, Generation] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    def start(self, generation: Generation, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run the reply as a task owned by the registry until it finishes.

        The task starts eagerly: it runs at once, up to its first wait (with a pooled
        connection, the request to Claude on its way), instead of from the next turn of the
        event loop, which under load came milliseconds later, before the request could
        leave."""
        self._ensure_heartbeat()
        self._running[generation.reply_id] = generation
        task = asyncio.eager_task_factory(
            asyncio.get_running_loop(), coro, name=f"reply-{generation.reply_id}"
        )
        generation.task = task
        task.add_done_callback(lambda t: self._finished(generation.reply_id, t))
        return task

    def _ensure_heartbeat(self) -> None:
        """With several processes, tell the others this one is alive while it generates."""
        from django.conf import settings

        if not settings.REDIS_URL or (self._heartbeat and not self._heartbeat.done()):
            return
        from conversations.recovery import keep_alive

        self._heartbeat = asyncio.get_running_loop().create_task(keep_alive(), name="heartbeat")

    def _finished(self, reply_id: int, task: asyncio.Task[None]) -> None:
        self._running.pop(reply_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("reply task failed", exc_info=task.exception())

    def get(self, reply_id: int) -> Generation | None:
        return self._running.get(reply_id)

    def running_in(self, conversation_id: int) -> list[Generation]:
        return [g for g in self._running.values() if g.conversation_id == conversation_id]

    async def aclose(self) -> None:
        """Stop the heartbeat (shutdown and tests)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None

    async def wait_all(self) -> None:
        """Await every running reply (tests and shutdown)."""
        tasks = [g.task for g in self._running.values() if g.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


generations = Generations()
