"""The reply's request body is byte for byte what the SDK's own encoder makes of it."""

from collections import namedtuple

from anthropic._utils._json import openapi_dumps
from hypothesis import given
from hypothesis import strategies as st

from conversations.claude.streaming import ReplyRequest
from conversations.context import api_messages, system_blocks

Turn = namedtuple("Turn", "role content")

# Any text a user or Claude may write: control characters, quotes and backslashes, line and
# paragraph separators, astral characters (hypothesis leaves out lone surrogates, which
# clean_text removes from what users send).
TEXT = st.text(
    st.characters(codec="utf-8") | st.sampled_from('"\\\x00\x1f\x7f\u2028\u2029\ufeff😀'),
    max_size=60,
)


@given(
    texts=st.lists(TEXT, min_size=1, max_size=5),
    system=TEXT,
    max_tokens=st.integers(1, 128_000),
)
def test_the_body_is_the_sdks_encoding(texts, system, max_tokens):
    turns = [Turn(("user", "assistant")[i % 2], text) for i, text in enumerate(texts)]
    request = ReplyRequest(
        model="claude-sonnet-4-5",
        max_tokens=max_tokens,
        messages=api_messages(turns),
        system=system_blocks(system, ""),
    )
    expected = {
        "model": request.model,
        "max_tokens": max_tokens,
        "messages": request.messages,
        "stream": True,
    }
    if request.system:
        expected["system"] = request.system
    assert request.body() == openapi_dumps(expected)
