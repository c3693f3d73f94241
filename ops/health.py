"""Readiness checks: database, Redis, migrations, the Claude circuit breaker."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor

BREAKER_KEY = "claude:breaker:state"  # written by conversations/claude/breaker.py
REDIS_TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    """One readiness check: did it pass, and what an operator should know."""

    ok: bool
    detail: str = ""


def _failure(what: str, exc: BaseException) -> Check:
    # The exception's class and first line say why; never the DSN (it may hold a password).
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return Check(ok=False, detail=f"{what}: {type(exc).__name__}: {reason}"[:300])


def check_database(connection: BaseDatabaseWrapper | None = None) -> Check:
    """Can the database run a query?"""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return _failure("database unreachable", exc)
    return Check(ok=True)


def check_redis(url: str) -> Check:
    """Does Redis answer a PING at `url`?"""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT
    )
    try:
        client.ping()
    except Exception as exc:
        return _failure("redis unreachable", exc)
    finally:
        client.close()
    return Check(ok=True)


def check_migrations(connection: BaseDatabaseWrapper | None = None) -> Check:
    """Are all migrations on disk applied to the database?"""
    connection = connection or connections[DEFAULT_DB_ALIAS]
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception as exc:
        return _failure("migrations could not be read", exc)
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        more = f" and {len(plan) - 5} more" if len(plan) > 5 else ""
        return Check(ok=False, detail=f"{len(plan)} unapplied migrations: {names}{more}")
    return Check(ok=True)


def breaker_state() -> str | None:
    """The shared circuit breaker state (closed, open, half_open), None if unknown."""
    return cache.get(BREAKER_KEY)


def check_breaker() -> Check:
    """Is the Claude circuit breaker letting calls through?"""
    try:
        state = breaker_state() or "closed"
    except Exception as exc:
        return _failure("breaker state unreadable", exc)
    if state == "open":
        return Check(
            ok=False,
            detail="Claude circuit breaker is open: calls to Claude fail fast until it cools down",
        )
    return Check(ok=True, detail=state)


def readiness() -> tuple[bool, dict[str, dict]]:
    """Run every check; return whether all passed, and each check's result by name."""
    checks: dict[str, Check] = {"database": check_database()}
    if settings.REDIS_URL:
        checks["redis"] = check_redis(settings.REDIS_URL)
    checks["migrations"] = (
        check_migrations()
        if checks["database"].ok
        else Check(ok=False, detail="not checked: database unreachable")
    )
    checks["breaker"] = check_breaker()
    return all(c.ok for c in checks.values()), {name: asdict(c) for name, c in checks.items()}
