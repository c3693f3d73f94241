"""Rate limits on views that are costly or guessable (login, sign-up, search, export, upload).

Same storage choice as the chat's limits (conversations.throttle): Redis when `REDIS_URL` is
set, so every process shares the windows, else this process's memory. Over the limit the
view answers 429 with a page that says how long to wait.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from limits import parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

_lock = threading.Lock()
_limiter: MovingWindowRateLimiter | None = None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or the one our trusted proxies saw."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            # Each trusted proxy appended the address it saw; earlier entries are the
            # client's to forge, so count from the right.
            return hops[max(0, len(hops) - proxies)]
    return request.META.get("REMOTE_ADDR") or None


def _storage() -> Storage:
    if settings.REDIS_URL:
        return RedisStorage(settings.REDIS_URL, key_prefix="chatsite-view-limits")
    return MemoryStorage()


def limiter() -> MovingWindowRateLimiter:
    global _limiter
    with _lock:
        if _limiter is None:
            _limiter = MovingWindowRateLimiter(_storage())
        return _limiter


def reset() -> None:
    """Forget every window (tests change the limits)."""
    global _limiter
    with _lock:
        _limiter = None


def _identity(request: HttpRequest, key: str) -> str:
    user = getattr(request, "user", None)
    if key == "user" and user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return f"ip:{client_ip(request) or 'unknown'}"


def check(request: HttpRequest, *, setting: str, scope: str, key: str) -> float | None:
    """Count one hit; return the seconds to wait when over the limit, else None."""
    rule = getattr(settings, setting)
    if not rule:
        return None
    item = parse(rule)
    ident = _identity(request, key)
    lim = limiter()
    if lim.hit(item, scope, ident):
        return None
    stats = lim.get_window_stats(item, scope, ident)
    return max(1.0, stats.reset_time - time.time())


def too_many_requests(request: HttpRequest, retry_in: float) -> HttpResponse:
    """The 429 page: what happened and when to try again."""
    seconds = math.ceil(retry_in)
    response = TemplateResponse(
        request,
        "ratelimited.html",
        {"retry_in": seconds},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def ratelimit(
    setting: str, *, key: str = "user", methods: Iterable[str] = ("GET", "POST")
) -> Callable:
    """Limit a view to the rate in `setting`, per user (or per client IP when `key="ip"`)."""
    counted = {method.upper() for method in methods}

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        name = getattr(getattr(view, "view_class", view), "__name__", "view")
        scope = f"{view.__module__}.{name}"

        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method in counted:
                retry_in = check(request, setting=setting, scope=scope, key=key)
                if retry_in is not None:
                    return too_many_requests(request, retry_in)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
