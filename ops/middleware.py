"""Per-request log context: a request id (honoured from X-Request-ID) and the user id."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

logger = structlog.get_logger("ops.http")

HEADER = "X-Request-ID"
# Probes and scrapes: logged at DEBUG, so they do not drown the access log.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Accept a caller's id only when it is short and plain, so it cannot forge log lines.
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def request_id_for(request: HttpRequest) -> str:
    """The caller's X-Request-ID when it is sane, else a new random one."""
    given = request.headers.get(HEADER, "")
    return given if VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def clear_log_context(**kwargs) -> None:
    """On request_finished: Django logs 4xx/5xx after the middleware, so clear only now."""
    structlog.contextvars.clear_contextvars()


def log_request(request: HttpRequest, response: HttpResponse, started: float) -> None:
    """One access-log event per request (path without its query string)."""
    level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
    logger.log(
        level,
        "http.request",
        method=request.method,
        path=request.path,
        status=response.status_code,
        duration_ms=round((time.monotonic() - started) * 1000),
    )


class RequestIdMiddleware:
    """Bind request_id to every log line of the request, echo it as X-Request-ID, log it."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _start(self, request: HttpRequest) -> str:
        request_id = request_id_for(request)
        request.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        return request_id

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        started = time.monotonic()
        request_id = self._start(request)
        response = self.get_response(request)
        response[HEADER] = request_id
        log_request(request, response, started)
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        request_id = self._start(request)
        response = await self.get_response(request)
        response[HEADER] = request_id
        log_request(request, response, started)
        return response


class UserIdMiddleware:
    """Bind the signed-in user's id to the request's log lines (after AuthenticationMiddleware)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        # No session cookie: AnonymousUser without a database query (health probes).
        if request.user.is_authenticated:
            structlog.contextvars.bind_contextvars(user_id=request.user.pk)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        user = await request.auser()
        if user.is_authenticated:
            structlog.contextvars.bind_contextvars(user_id=user.pk)
        return await self.get_response(request)
