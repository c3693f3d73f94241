"""Token splitting, request accounting and demo replies (no HTTP)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fakeanthropic import count_tokens, demo_reply, input_tokens, split_tokens
from fakeanthropic.replies import filler_reply, long_reply
from fakeanthropic.scripting import Scripted, make_plan


@given(st.text())
def test_split_is_lossless(text):
    pieces = split_tokens(text)
    assert "".join(pieces) == text
    assert all(pieces)
    assert count_tokens(text) == len(pieces)


def test_split_examples():
    assert split_tokens("Hello, world!") == ["Hello", ",", " world", "!"]
    assert split_tokens("  indented") == [" ", " inden", "ted"]
    assert split_tokens("12345") == ["123", "45"]
    assert count_tokens("") == 0


def test_prose_is_about_four_characters_a_token():
    prose = (
        "Prompt caching lets a client resume from a prefix of its prompt, which reduces "
        "processing time and cost for repetitive tasks with consistent elements."
    )
    assert 3.3 <= len(prose) / count_tokens(prose) <= 4.8


def test_input_token_rule():
    two_blocks = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    body = {
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Hi there"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
            {"role": "user", "content": two_blocks},
        ],
    }
    expected = 5 + count_tokens("Be brief.") + 3 * 3 + count_tokens("Hi there")
    expected += count_tokens("Hello!") + 2
    assert input_tokens(body) == expected
    assert input_tokens(body) == input_tokens(dict(body))  # deterministic


def test_demo_reply_is_markdown_and_deterministic():
    for prompt in ["hi", "How do I sort a list in Python?", "x" * 3000, "é ü 日本語 `code`"]:
        reply = demo_reply(prompt)
        assert reply == demo_reply(prompt)
        assert reply.startswith("## ")
        assert "**" in reply and "\n- " in reply
        assert "```python\n" in reply and reply.rstrip().endswith("```")
        assert 60 <= count_tokens(reply) <= 120
    assert "sort a list" in demo_reply("How do I sort a list in Python?")
    assert demo_reply("a") != demo_reply("b")


def test_long_and_filler_replies():
    assert 1950 <= count_tokens(long_reply("anything")) <= 2150
    for n in (0, 1, 2, 50, 777):
        assert count_tokens(filler_reply(n)) == n


def test_plan_directives_and_scripts():
    body = {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": "x"}]}

    def with_prompt(text):
        return {**body, "messages": [{"role": "user", "content": text}]}

    assert make_plan(with_prompt("[[fake:tokens=12]]"), None).output_tokens == 12
    assert make_plan(with_prompt("[[fake:overloaded]]"), None).script.status == 529
    assert make_plan(with_prompt("[[fake:stall]]"), None).script.stall_seconds == float("inf")
    assert make_plan(with_prompt("[[fake:stall=2.5]]"), None).script.stall_seconds == 2.5
    slow = make_plan(with_prompt("[[fake:slow]]"), None).script
    assert slow.ttft == 2.0 and slow.tokens_per_second == 5.0
    p = make_plan(with_prompt("[[fake:midstream_overload]]"), None)
    assert p.script.error_after_tokens == 12
    # a script overrides directives field by field
    p = make_plan(with_prompt("[[fake:tokens=12]]"), Scripted(text="fixed"))
    assert p.text == "fixed"
    assert Scripted.from_json({"text": "a", "status": 429}).to_json() == {
        "text": "a",
        "status": 429,
    }
