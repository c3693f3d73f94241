"""Operator endpoints: /healthz, /readyz and /metrics."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops import health, metrics


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving (touches nothing else)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: database, Redis, migrations and the Claude breaker are fine."""
    ready, checks = health.readiness()
    failing = [f"{name}: {c['detail']}" for name, c in checks.items() if not c["ok"]]
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if failing:
        body["reasons"] = failing
    return JsonResponse(body, status=200 if ready else 503)


def _bearer_token(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def metrics_allowed(request: HttpRequest) -> bool:
    """A scraper with METRICS_TOKEN as bearer token, or a signed-in staff member."""
    token = _bearer_token(request)
    if token and settings.METRICS_TOKEN:
        return hmac.compare_digest(token.encode(), settings.METRICS_TOKEN.encode())
    user = getattr(request, "user", None)
    return bool(user and user.is_active and user.is_staff)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of this process (or of the host's processes, multiprocess)."""
    if not metrics_allowed(request):
        response = HttpResponse("Metrics need a bearer token or a staff session.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        state = health.breaker_state()
    except Exception:  # cache down: keep the last state we saw
        state = None
    if state in metrics.BREAKER_STATES:
        metrics.set_breaker_state(state)
    body, content_type = metrics.exposition()
    return HttpResponse(body, content_type=content_type)
