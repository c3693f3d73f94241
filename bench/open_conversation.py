"""Server time to open a conversation of 50 messages and one of 5,000 (issue 8).

In this process, on the bench database: two conversations of one bench user get 50 and
5,000 complete messages (bulk insert, then ANALYZE as a live database would have), then
GET /c/<id>/ through Django's test client (every middleware, the view, the template with
markdown rendering), alternating the two so drift hits both alike. After warm-up requests,
open_ms.mN is the median wall time of `samples` requests; the ratio is m5000 / m50
(target: at most 1.2). The query count of each open is recorded in the details.
"""

from __future__ import annotations

import statistics
import time

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench import data

SIZES = (50, 5000)


def _open_ms(client: Client, url: str) -> float:
    began = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - began) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}")
    return elapsed


def run(*, samples: int = 40, warmup: int = 5) -> dict:
    """Median ms to open a 50- and a 5,000-message conversation, and their ratio."""
    bench_user = data.make_user("open-conversation")
    conversation_ids = data.make_conversations(bench_user, len(SIZES))
    urls = {}
    for size, conversation_id in zip(SIZES, conversation_ids, strict=True):
        data.add_history(conversation_id, size)
        urls[size] = f"/c/{conversation_id}/"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_message")

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(pk=bench_user.id))
    queries = {}
    for size, url in urls.items():
        for _ in range(warmup):
            _open_ms(client, url)
        with CaptureQueriesContext(connection) as captured:
            _open_ms(client, url)
        queries[size] = len(captured.captured_queries)

    times: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(samples):
        for size, url in urls.items():
            times[size].append(_open_ms(client, url))

    medians = {size: statistics.median(found) for size, found in times.items()}
    return {
        "open_ms.m50": round(medians[50], 2),
        "open_ms.m5000": round(medians[5000], 2),
        "open_ms.ratio": round(medians[5000] / medians[50], 3),
        "details": {
            "samples": samples,
            "warmup": warmup,
            "queries_per_open": {f"m{size}": queries[size] for size in SIZES},
            "p90_ms": {
                f"m{size}": round(statistics.quantiles(found, n=10)[-1], 2)
                for size, found in times.items()
            },
            "min_ms": {f"m{size}": round(min(found), 2) for size, found in times.items()},
        },
    }
