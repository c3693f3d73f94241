"""The spend dashboard with a million ledger rows: `python -m bench.dashboard [--quick]`.

In a throwaway database (<bench db>_dashboard, dropped afterwards unless --keep): 10,000
users, 100,000 conversations of 10 calls each (a session: one day, one model) and
1,000,000 ledger rows over the last 90 days (a bulk INSERT ... SELECT from generate_series,
priced from the seeded price table, 3% of calls to an unpriced model), then
`rebuild_rollups()`; then it requests the dashboard page through Django's full stack
(middleware, admin, templates, SVG charts) as a superuser and records latency percentiles.
Writes `dashboard_p95_ms_1m_rows` (the page an admin opens: this month) and the other
ranges into bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/chatsite_bench"
USERS = 10_000
CONVERSATIONS_PER_USER = 10
DAYS = 90


def bench_database_url() -> str:
    base = urlsplit(os.environ.get("DATABASE_URL") or DEFAULT_DB)
    name = base.path.lstrip("/") or "chatsite"
    return urlunsplit(base._replace(path=f"/{name}_dashboard"))


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    name = parts.path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


# Each conversation is one session: its calls share one day (and model), a few minutes
# apart. Row g belongs to conversation (g - 1) / calls-per-conversation; conversations are
# made user by user, so conversation c belongs to user c / conversations-per-user.
# hashint4() gives each conversation its day and model deterministically.
LEDGER_SQL = """
INSERT INTO billing_ledgerentry (
    user_id, conversation_id, message_id, purpose, model, input_tokens, cache_write_5m_tokens,
    cache_write_1h_tokens, cache_read_tokens, output_tokens, cost, cache_savings, priced, batch,
    ttft_ms, duration_ms, status, error_kind, request_id, created_at)
SELECT c.user_id, c.conversation_id, NULL, c.purpose, c.model, c.input, c.write_5m, 0, c.read,
       c.output,
       round((c.input * p.input_usd + c.write_5m * p.cache_write_5m_usd
              + c.read * p.cache_read_usd + c.output * p.output_usd) / 1000000
             * CASE WHEN c.batch THEN 0.5 ELSE 1 END, 6),
       round(c.read * (p.input_usd - p.cache_read_usd) / 1000000
             * CASE WHEN c.batch THEN 0.5 ELSE 1 END, 6),
       p.id IS NOT NULL, c.batch, c.ttft, c.duration,
       CASE WHEN c.failed THEN 'failed' ELSE 'complete' END,
       CASE WHEN c.failed THEN 'overloaded' ELSE '' END,
       'req_bench_' || c.g, c.created_at
FROM (
    SELECT g,
           %(user_min)s + conv / %(per_user)s AS user_id,
           %(conv_min)s + conv AS conversation_id,
           CASE WHEN m < 60 THEN 'claude-sonnet-4-6' WHEN m < 85 THEN 'claude-haiku-4-5'
                WHEN m < 97 THEN 'claude-opus-4-8' ELSE 'claude-fable-5-2' END AS model,
           CASE WHEN r < 0.90 THEN 'chat' WHEN r < 0.98 THEN 'title' ELSE 'batch' END
               AS purpose,
           r >= 0.98 AS batch,
           (random() * 3000)::int AS input, (random() * 2000)::int AS write_5m,
           (random() * 20000)::int AS read, (random() * 1500)::int AS output,
           200 + (random() * 2800)::int AS ttft, 1000 + (random() * 39000)::int AS duration,
           random() < 0.03 AS failed,
           date_trunc('day', now()) - make_interval(days => day)
               + make_interval(mins => (start_minute + 3 * call) %% 1440) AS created_at
    FROM (
        SELECT g, conv, call, random() AS r,
               abs(hashint4(conv)) %% %(days)s AS day,
               abs(hashint4(conv + 7919)) %% 100 AS m,
               abs(hashint4(conv + 104729)) %% 1380 AS start_minute
        FROM (SELECT g, (g - 1) / %(calls)s AS conv, (g - 1) %% %(calls)s AS call
              FROM generate_series(1, %(rows)s) g) numbered
    ) s
) c
LEFT JOIN billing_price p ON p.model = c.model
"""


def load(rows: int) -> dict[str, float]:
    """Users, conversations, ledger rows and their rollups; seconds each step took."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from billing.rollups import rebuild_rollups
    from conversations.models import Conversation

    timings = {}
    started = time.monotonic()
    User = get_user_model()
    users = User.objects.bulk_create(
        [User(username=f"user{i:05d}", email=f"user{i:05d}@example.com") for i in range(USERS)],
        batch_size=5000,
    )
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(user_id=u.pk, title=f"{u.username} conversation {k}")
            for u in users
            for k in range(CONVERSATIONS_PER_USER)
        ],
        batch_size=5000,
    )
    user_ids = [u.pk for u in users]
    conv_ids = [c.pk for c in conversations]
    assert user_ids == list(range(user_ids[0], user_ids[0] + USERS)), "ids are contiguous"
    assert conv_ids == list(range(conv_ids[0], conv_ids[0] + len(conv_ids)))
    timings["users_and_conversations_s"] = time.monotonic() - started

    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            LEDGER_SQL,
            {
                "user_min": user_ids[0],
                "conv_min": conv_ids[0],
                "users": USERS,
                "per_user": CONVERSATIONS_PER_USER,
                "days": DAYS,
                "calls": rows // (USERS * CONVERSATIONS_PER_USER),
                "rows": rows,
            },
        )
    timings["ledger_insert_s"] = time.monotonic() - started

    started = time.monotonic()
    rebuild_rollups()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    timings["rollup_rebuild_s"] = time.monotonic() - started
    return timings


def measure(requests: int) -> dict:
    """Request each view of the dashboard `requests` times; latency percentiles in ms."""
    import datetime as dt

    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils import timezone

    from bench.harness import percentile, summary

    admin = get_user_model().objects.create_superuser("bench-admin", "admin@example.com", None)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin)
    today = timezone.now().astimezone(dt.UTC).date()

    def span(days: int) -> dict:
        start = today - dt.timedelta(days=days - 1)
        return {"start": f"{start:%Y-%m-%d}", "end": f"{today:%Y-%m-%d}"}

    scenarios = {
        "this_month": {},
        "last_30_days": span(30),
        "last_90_days": span(90),
        "search_and_sort": {"q": "user04", "sort": "user"},
    }
    results = {}
    for name, params in scenarios.items():
        for _ in range(3):  # warm-up
            assert client.get("/admin/billing/dashboard/", params).status_code == 200
        samples = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get("/admin/billing/dashboard/", params)
            samples.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        results[name] = {
            "p50_ms": round(percentile(samples, 50), 1),
            "p95_ms": round(percentile(samples, 95), 1),
            "samples": summary(samples),
        }
    started = time.perf_counter()
    csv = client.get("/admin/billing/dashboard/users.csv", span(90))
    lines = sum(chunk.count(b"\n") for chunk in csv.streaming_content)
    results["csv_export_90_days"] = {
        "ms": round((time.perf_counter() - started) * 1000, 1),
        "rows": lines - 1,
    }
    return results


def in_process(rows: int, requests: int) -> dict:
    """Run in a process whose Django points at the throwaway database."""
    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-abcdefghijklmnop")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("STATIC_MANIFEST", "false")
    os.environ.setdefault("DATABASE_POOL", "false")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("LOGIN_THROTTLE_ENABLED", "false")  # force_login has no client IP
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    timings = load(rows)
    pages = measure(requests)
    from billing.models import LedgerEntry, UserSpend

    return {
        "rows": LedgerEntry.objects.count(),
        "users": USERS,
        "user_rollup_rows": UserSpend.objects.count(),
        "load": {k: round(v, 1) for k, v in timings.items()},
        "pages": pages,
    }


def run(*, quick: bool = False, keep: bool = False) -> dict[str, float]:
    """Run the benchmark in a child process; return the figures for latest.json."""
    argv = [sys.executable, "-m", "bench.dashboard", "--child"]
    if quick:
        argv.append("--quick")
    if keep:
        argv.append("--keep")
    output = subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    details = json.loads(output.strip().splitlines()[-1])
    pages = details["pages"]
    figures = {
        "dashboard_p95_ms_1m_rows": pages["this_month"]["p95_ms"],
        "dashboard_p50_ms_1m_rows": pages["this_month"]["p50_ms"],
        "dashboard_p95_ms_1m_rows_last_30_days": pages["last_30_days"]["p95_ms"],
        "dashboard_p95_ms_1m_rows_last_90_days": pages["last_90_days"]["p95_ms"],
        "dashboard_p95_ms_1m_rows_search_sort": pages["search_and_sort"]["p95_ms"],
        "dashboard_ledger_rows": details["rows"],
    }
    if quick:
        figures = {k.replace("_1m_rows", "_quick"): v for k, v in figures.items()}
    return figures | {"_dashboard_details": details}


def write_latest(figures: dict) -> None:
    """Merge these figures into bench/results/latest.json (other benchmarks write theirs)."""
    path = os.path.join(ROOT, "bench", "results", "latest.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    current = {}
    if os.path.exists(path):
        with open(path) as f:
            current = json.load(f)
    details = figures.pop("_dashboard_details", None)
    current.update(figures)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(current, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
    if details is not None:
        with open(os.path.join(ROOT, "bench", "results", "dashboard.json"), "w") as f:
            json.dump(details, f, indent=2)
            f.write("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, fewer requests")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway database")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url = bench_database_url()
        recreate_database(url)
        try:
            details = in_process(100_000 if args.quick else 1_000_000, 10 if args.quick else 30)
        finally:
            from django.db import connections

            connections.close_all()
            if not args.keep:
                recreate_database(url, drop_only=True)
        print(json.dumps(details))
        return
    figures = run(quick=args.quick, keep=args.keep)
    write_latest(dict(figures))
    print(json.dumps({k: v for k, v in figures.items() if not k.startswith("_")}, indent=2))


if __name__ == "__main__":
    main()
