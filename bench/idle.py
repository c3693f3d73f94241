"""RSS growth of the app per idle authenticated socket (`idle_kb_per_socket`).

A fresh daphne; WARM sockets are opened first (code paths, pools and caches warmed), then
the baseline RSS is read; then SOCKETS more authenticated sockets are opened (in batches of
50, one conversation per 20 sockets) and left idle; after a settle the RSS is read again.
The figure is (after - baseline) / SOCKETS, in KB (1,024 bytes).
"""

from __future__ import annotations

import asyncio

from bench import clients
from bench.harness import raise_nofile

WARM = 100
BATCH = 50
PER_CONVERSATION = 20


async def _open_many(run, count: int) -> list:
    conversations = await run.conversations(count // PER_CONVERSATION + 1)
    sockets = []
    for start in range(0, count, BATCH):
        batch = range(start, min(start + BATCH, count))
        sockets += await asyncio.gather(
            *(
                clients.open_socket(
                    run.ws_url, run.user.cookie, conversations[i // PER_CONVERSATION]
                )
                for i in batch
            )
        )
    return sockets


async def measure(run, *, sockets: int, settle: float = 3.0) -> dict:
    limit = raise_nofile(sockets * 2 + 1024)
    warm = await _open_many(run, WARM)
    await asyncio.sleep(settle)
    before = run.app.rss()
    opened = await _open_many(run, sockets)
    await asyncio.sleep(settle)
    after = run.app.rss()
    alive = sum(1 for ws in opened if ws.state.name == "OPEN")
    await asyncio.gather(*(ws.close() for ws in [*warm, *opened]), return_exceptions=True)
    return {
        "idle_kb_per_socket": round((after - before) / sockets / 1024, 2),
        "details": {
            "sockets": sockets,
            "open_at_the_end": alive,
            "rss_before_mb": round(before / 2**20, 1),
            "rss_after_mb": round(after / 2**20, 1),
            "nofile_limit": limit,
        },
    }
