"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest

from conversations.claude import breaker


def site(request: HttpRequest) -> dict[str, object]:
    """Expose demo mode and sign-up availability to templates."""
    return {
        "demo_mode": settings.DEMO_MODE,
        "signup_enabled": settings.SIGNUP_ENABLED,
        "claude_unavailable": breaker.current_state_sync() == breaker.OPEN,
    }
