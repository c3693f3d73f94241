"""The chat sockets open in this process, by conversation.

A reply's deltas reach the tabs of its own process by a direct call: no channel-layer
message, queue and consumer wake-up per delta per tab, which made relaying cost twice what
a bare relay does. Tabs in other processes still get every delta through the channel
layer's group (with Redis); a tab that gets a delta both ways drops the copy by its offset.
With the in-memory layer every tab is here, so the other events of a turn (see
`conversations.turns._broadcast`) and stop requests skip the layer too.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Protocol

from channels.layers import InMemoryChannelLayer

logger = logging.getLogger(__name__)


class Tab(Protocol):
    async def relay(self, event: dict[str, Any]) -> None: ...


_open: defaultdict[int, set[Tab]] = defaultdict(set)


def join(conversation_id: int, tab: Tab) -> None:
    _open[conversation_id].add(tab)


def leave(conversation_id: int, tab: Tab) -> None:
    tabs = _open.get(conversation_id)
    if tabs is not None:
        tabs.discard(tab)
        if not tabs:
            del _open[conversation_id]


async def deliver(conversation_id: int, event: dict[str, Any]) -> None:
    """Hand an event (a group message's dict) to this process's tabs on the conversation."""
    for tab in tuple(_open.get(conversation_id, ())):
        try:
            await tab.relay(event)
        except Exception:  # a socket closing under us: its disconnect will remove it
            logger.debug("delta not delivered to a closing tab", exc_info=True)


def reaches_every_tab(layer: Any) -> bool:
    """True when this process holds every tab (the in-memory layer): no group message needed."""
    return isinstance(layer, InMemoryChannelLayer)
