"""Structured output: `messages.parse` through the real SDK gets schema-valid JSON."""

import anthropic
import pydantic

from fakeanthropic import FakeAnthropic, fake_client_kwargs


class Summary(pydantic.BaseModel):
    title: str = pydantic.Field(max_length=40)
    tags: list[str]
    score: int = pydantic.Field(ge=0)
    urgent: bool


async def test_parse_returns_a_validated_instance_derived_from_the_prompt():
    client = anthropic.AsyncAnthropic(api_key="k", **fake_client_kwargs(FakeAnthropic(ttft=0)))
    result = await client.messages.parse(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": "<user>Plan the quarterly budget review</user>"}],
        output_format=Summary,
    )
    await client.close()
    assert isinstance(result.parsed_output, Summary)
    assert result.parsed_output.title.startswith("Plan quarterly budget review")
    assert result.usage.output_tokens > 0
