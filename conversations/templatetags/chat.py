from django import template
from django.utils.safestring import SafeString

from conversations.rendering import render_markdown

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Render untrusted markdown to sanitised HTML."""
    return render_markdown(text or "")
