"""Replies left `streaming` by a process that died are marked `interrupted`."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connections
from django.utils import timezone

from conversations.models import Message

logger = logging.getLogger(__name__)

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
HEARTBEAT_KEY = "chatsite:process:{}"
HEARTBEAT_SECONDS = 10


def heartbeat() -> None:
    """Say this process is alive (only meaningful with a shared cache)."""
    cache.set(HEARTBEAT_KEY.format(PROCESS_ID), 1, timeout=HEARTBEAT_SECONDS * 3)


def sweep_orphaned_replies() -> int:
    """Mark as interrupted the streaming replies whose process is gone; return how many."""
    streaming = Message.objects.filter(status=Message.Status.STREAMING).exclude(owner=PROCESS_ID)
    owners = set(streaming.values_list("owner", flat=True).distinct())
    if not owners:
        return 0
    if settings.REDIS_URL:
        alive = cache.get_many([HEARTBEAT_KEY.format(o) for o in owners if o])
        dead = [o for o in owners if HEARTBEAT_KEY.format(o) not in alive]
    else:
        dead = list(owners)  # one process per database without Redis: the others are gone
    count = streaming.filter(owner__in=dead).update(
        status=Message.Status.INTERRUPTED, finished_at=timezone.now()
    )
    if count:
        logger.warning("marked %d orphaned streaming replies as interrupted", count)
    return count


def recover_at_start() -> None:
    """Run once when the ASGI app starts; tolerate a database that is not ready yet."""
    try:
        heartbeat()
        sweep_orphaned_replies()
    except (DatabaseError, RuntimeError) as exc:  # not migrated, or no DB access (tests)
        logger.warning("could not sweep orphaned replies: %s", exc.__class__.__name__)
    finally:
        connections.close_all()  # this thread is not a request thread


async def keep_alive() -> None:
    """Refresh this process's heartbeat and sweep other processes' orphans, forever."""
    beats = 0
    while True:
        try:
            await sync_to_async(heartbeat)()
            if beats % 3 == 0:
                await sync_to_async(sweep_orphaned_replies)()
        except Exception:  # a blip in Redis or the database must not end the loop
            logger.warning("heartbeat failed", exc_info=True)
        beats += 1
        await asyncio.sleep(HEARTBEAT_SECONDS)
