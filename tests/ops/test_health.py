"""/healthz and /readyz, and the readiness checks against real broken endpoints."""

import socket

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.db.backends.postgresql.base import DatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder

from ops import health


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any query would raise "Database access not allowed".
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_is_ok_when_everything_is(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is True
    assert body["checks"]["breaker"] == {"ok": True, "detail": "closed"}
    assert "redis" not in body["checks"]  # REDIS_URL unset: not required


@pytest.mark.django_db
def test_check_database_reports_an_unreachable_server():
    broken = DatabaseWrapper(
        {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": str(closed_port())}, "broken"
    )
    result = health.check_database(broken)
    broken.close()
    assert result.ok is False
    assert result.detail.startswith("database unreachable: OperationalError")
    assert "password" not in result.detail.lower()


@pytest.mark.django_db(transaction=True)
def test_readyz_is_503_when_the_database_is_down(client):
    default = connections["default"]
    saved = dict(default.settings_dict)
    default.close()
    default.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    try:
        response = client.get("/readyz")
    finally:
        default.close()
        default.settings_dict.clear()
        default.settings_dict.update(saved)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is False
    assert "OperationalError" in body["checks"]["database"]["detail"]
    assert any(reason.startswith("database:") for reason in body["reasons"])


@pytest.mark.django_db
def test_readyz_checks_redis_when_configured(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/14"
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == {"ok": True, "detail": ""}


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_down(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"]["ok"] is False
    assert "redis unreachable: ConnectionError" in body["checks"]["redis"]["detail"]
    assert body["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_while_the_breaker_is_open(client):
    cache.set("claude:breaker:state", "open")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["breaker"]["ok"] is False
    assert "circuit breaker is open" in " ".join(body["reasons"])


@pytest.mark.django_db
def test_readyz_stays_ok_while_the_breaker_probes(client):
    cache.set("claude:breaker:state", "half_open")
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["breaker"]["detail"] == "half_open"


@pytest.mark.django_db
def test_readyz_is_503_with_unapplied_migrations(client):
    # Forget one applied migration (rolled back with the test's transaction).
    MigrationRecorder.Migration.objects.filter(app="ops", name="0001_initial").delete()
    response = client.get("/readyz")
    assert response.status_code == 503
    detail = response.json()["checks"]["migrations"]["detail"]
    assert detail == "1 unapplied migrations: ops.0001_initial"
