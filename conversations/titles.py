"""Auto titles: after the first reply a cheap model names the conversation (structured
output, validated by pydantic)."""

from __future__ import annotations

import logging

import anthropic
from django.conf import settings
from pydantic import BaseModel, Field, ValidationError

from conversations.claude.client import get_client
from conversations.models import Conversation

logger = logging.getLogger(__name__)


MAX_TOKENS = 60


class Title(BaseModel):
    """What the title model must return."""

    title: str = Field(min_length=1, max_length=80, description="A short, specific title")


def title_prompt(question: str, answer: str) -> str:
    return (
        f"<user>{question[:2000]}</user>\n<assistant>{answer[:2000]}</assistant>\n\n"
        "Write a short, specific title (at most 8 words, no quotes) for this conversation."
    )


async def generate_title(*, question: str, answer: str) -> tuple[str | None, object]:
    """Ask the title model; return (title or None, the response for the ledger)."""
    try:
        response = await get_client().messages.parse(
            model=settings.TITLE_MODEL,
            max_tokens=MAX_TOKENS,
            messages=[{"role": "user", "content": title_prompt(question, answer)}],
            output_format=Title,
        )
    except (anthropic.APIError, ValidationError, ValueError) as exc:
        logger.warning("title generation failed: %s", exc.__class__.__name__)
        return None, None
    parsed = response.parsed_output
    title = " ".join(parsed.title.split()).strip(" \"'") if parsed else ""
    return (title or None), response


def save_title(conversation_id: int, title: str) -> bool:
    """Set the title unless the user named the conversation meanwhile."""
    updated = Conversation.objects.filter(
        pk=conversation_id, title=Conversation.DEFAULT_TITLE
    ).update(title=title[:200])
    return bool(updated)


def usage_of(response) -> dict[str, int]:
    """The response's usage as the ledger wants it ({} when the call failed)."""
    usage = getattr(response, "usage", None)
    if usage is None:
        return {}
    return {
        "input_tokens": usage.input_tokens or 0,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens or 0,
        "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
        "output_tokens": usage.output_tokens or 0,
    }
