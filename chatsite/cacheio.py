"""Cache calls from async code that never queue behind the ORM's thread.

Django's `cache.aget()` and friends run the sync call through `sync_to_async`, which is
thread-sensitive: on the one thread every ORM call of the process shares. A reply's
circuit-breaker and stop-flag reads would then wait behind other conversations' queries
before the call to Claude could start. Here an in-process cache (LocMemCache: a dict under
a lock) is called directly and a network one (Redis) in the default thread pool.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.core.cache.backends.locmem import LocMemCache


async def call(method: str, *args: Any, **kwargs: Any) -> Any:
    """`await call("get_many", keys)` runs `cache.get_many(keys)` off the ORM's thread."""
    backend = caches["default"]
    function = getattr(backend, method)
    if isinstance(backend, LocMemCache):
        return function(*args, **kwargs)
    return await sync_to_async(function, thread_sensitive=False)(*args, **kwargs)
