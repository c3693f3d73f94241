"""Structured logs: structlog on top of stdlib logging, JSON or console, secrets redacted.

settings.LOGGING points its formatters, filter and admin mail handler here; every record,
structlog's or stdlib's (Django, daphne, the SDK), goes through one redacting renderer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

import structlog
from django.conf import settings
from django.utils.log import AdminEmailHandler

REDACTED = "[REDACTED]"
# Anthropic API and admin keys: sk-ant-api03-…, sk-ant-admin01-…
ANTHROPIC_KEY_RE = re.compile(r"sk-ant-[A-Za-z0-9_\-]+")
MIN_SECRET_LENGTH = 8  # shorter configured "keys" (e.g. "demo") are not secrets worth a scan


def _configured_secrets() -> list[str]:
    if not settings.configured:
        return []
    key = getattr(settings, "ANTHROPIC_API_KEY", "") or ""
    return [key] if len(key) >= MIN_SECRET_LENGTH else []


def redact(text: str) -> str:
    """Replace anything that looks like an Anthropic key, and the configured key, in text."""
    for secret in _configured_secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    return ANTHROPIC_KEY_RE.sub(REDACTED, text)


def redact_value(value: Any) -> Any:
    """Redact strings inside dicts, lists and tuples; leave other values alone."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    return value


def redact_event(logger: Any, method_name: str, event_dict: dict) -> dict:
    """structlog processor: redact every value of the event."""
    return redact_value(event_dict)


class RedactingRenderer:
    """Render with `renderer`, then redact the final line (tracebacks included)."""

    def __init__(self, renderer: Callable[..., str]) -> None:
        self.renderer = renderer

    def __call__(self, logger: Any, method_name: str, event_dict: dict) -> str:
        return redact(self.renderer(logger, method_name, event_dict))


class RedactSecretsFilter(logging.Filter):
    """Redact a record's message before any handler formats it (defence in depth)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, dict):  # a structlog event on its way to ProcessorFormatter
            record.msg = redact_value(record.msg)
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the formatter's problem, not ours
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class RedactingAdminEmailHandler(AdminEmailHandler):
    """Django's error mail to ADMINS, with keys redacted from subject and body."""

    def send_mail(self, subject: str, message: str, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("html_message"):
            kwargs["html_message"] = redact(kwargs["html_message"])
        super().send_mail(redact(subject), redact(message), *args, **kwargs)


def drop_formatter_leftovers(logger: Any, method_name: str, event_dict: dict) -> dict:
    """Drop what an earlier handler's Formatter set on the record (never a real extra)."""
    event_dict.pop("message", None)
    event_dict.pop("asctime", None)
    return event_dict


# Added to every event, structlog's or stdlib's, before the formatter's processors.
SHARED_PROCESSORS: list[Callable] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]
# stdlib records (Django, daphne, libraries) also bring their `extra=` fields.
FOREIGN_PRE_CHAIN: list[Callable] = [
    *SHARED_PROCESSORS,
    structlog.stdlib.ExtraAdder(),
    drop_formatter_leftovers,
]


def json_formatter() -> logging.Formatter:
    """One JSON object per line: for production log collectors."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=FOREIGN_PRE_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            RedactingRenderer(structlog.processors.JSONRenderer(default=str)),
        ],
    )


def console_formatter() -> logging.Formatter:
    """Readable, aligned lines for development."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=FOREIGN_PRE_CHAIN,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_event,
            RedactingRenderer(structlog.dev.ConsoleRenderer(colors=False)),
        ],
    )


def configure_structlog() -> None:
    """Route structlog through stdlib logging, so settings.LOGGING decides where lines go."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *SHARED_PROCESSORS,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
