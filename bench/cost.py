"""What a long conversation costs: our manager against the production guide's (issue 4).

One scripted 60-turn conversation (a 3,000-token system prompt, a 20,000-token budget,
user messages of 30-300 tokens, replies of 150-700 tokens set by `[[fake:tokens=N]]`) is run
twice against the fake API, which simulates the prompt cache, back to back (well inside the
5-minute TTL):

- ours: conversations.context.plan_context / learn_from_usage, exactly as
  conversations.turns drives them (estimates replaced by exact counts, cache breakpoints
  on the system prompt and the newest message, one-step trims to CONTEXT_TRIM_TARGET);
- the guide's `ConversationManager` (shared/seed/production-guide.txt), re-implemented
  faithfully below: `len(text) // 4` estimates of the messages only, and before each call
  drop the oldest pair while the estimate is over `max_history_tokens`; no cache_control.

Both are priced by billing.pricing.cost_of with the same price table (the dated prices in
the database). cost_ratio_vs_guide_manager = ours / guide's; cache-hit share = cache reads
/ all input tokens (input + cache writes + cache reads).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from decimal import Decimal

import anthropic

from bench.harness import API_KEY, MODEL
from fakeanthropic import FakeAnthropic, fake_client_kwargs, split_tokens

TURNS = 60
SYSTEM_TOKENS = 3000
BUDGET = 20_000
MAX_TOKENS = 2048
_WORDS = (
    "customer order invoice refund policy shipping account password billing delivery "
    "warranty product support question answer please thanks return exchange address "
    "payment card subscription plan upgrade cancel status tracking number email phone "
    "manager issue ticket priority weekend holiday discount coupon receipt store online"
)
VOCABULARY = _WORDS.split()


def prose(tokens: int, rng: random.Random) -> str:
    """Text of exactly `tokens` tokens (as the fake API counts them)."""
    words = " ".join(rng.choice(VOCABULARY) for _ in range(tokens)).capitalize()
    return "".join(split_tokens(words)[:tokens])


def script(seed: int = 4) -> tuple[str, list[str]]:
    rng = random.Random(seed)
    system = prose(SYSTEM_TOKENS, rng)
    messages = [
        f"[[fake:tokens={rng.randint(150, 700)}]] {prose(rng.randint(30, 300), rng)}"
        for _ in range(TURNS)
    ]
    return system, messages


@dataclass
class Msg:
    id: int
    role: str
    content: str
    tokens: int | None = None


@dataclass
class GuideConversationManager:
    """The guide's ConversationManager, as printed (budget over the messages only)."""

    max_history_tokens: int = 50000
    messages: list = field(default_factory=list)
    system: str | None = None

    def add_user_message(self, content: str) -> None:
        self.messages.append({"role": "user", "content": content})
        self._trim_if_needed()

    def add_assistant_message(self, content: str) -> None:
        self.messages.append({"role": "assistant", "content": content})

    def _estimate_tokens(self, text: str) -> int:
        return len(text) // 4

    def _trim_if_needed(self) -> None:
        while len(self.messages) > 2:
            total_tokens = sum(self._estimate_tokens(str(m["content"])) for m in self.messages)
            if total_tokens <= self.max_history_tokens:
                break
            self.messages = self.messages[2:]

    def get_messages(self) -> list:
        return self.messages.copy()


def _client() -> anthropic.AsyncAnthropic:
    fake = FakeAnthropic(ttft=0.0, tokens_per_second=1e9, api_key=API_KEY)
    return anthropic.AsyncAnthropic(api_key=API_KEY, max_retries=0, **fake_client_kwargs(fake))


async def run_ours(system: str, texts: list[str]) -> list[dict]:
    from conversations import context

    client = _client()
    history: list[Msg] = []
    start, overhead, key = None, None, ""
    usages = []
    for text in texts:
        user = Msg(len(history) + 1, "user", text, context.estimate_tokens(text))
        history.append(user)
        plan = context.plan_context(
            messages=history,
            model=MODEL,
            system=system,
            budget=BUDGET,
            current_start=start,
            learnt_overhead=overhead,
            learnt_overhead_key=key,
        )
        response = await client.messages.create(
            model=MODEL, max_tokens=MAX_TOKENS, system=plan.system, messages=plan.messages
        )
        usage = response.usage.model_dump()
        total = sum(usage[k] or 0 for k in ("input_tokens", "cache_creation_input_tokens",
                                             "cache_read_input_tokens"))  # fmt: skip
        user.tokens, overhead = context.learn_from_usage(plan, total)
        start, key = plan.start_id, plan.overhead_key
        reply = response.content[0].text
        history.append(Msg(len(history) + 1, "assistant", reply, usage["output_tokens"]))
        usages.append(usage)
    await client.close()
    return usages


async def run_guide(system: str, texts: list[str]) -> list[dict]:
    client = _client()
    manager = GuideConversationManager(max_history_tokens=BUDGET, system=system)
    usages = []
    for text in texts:
        manager.add_user_message(text)
        response = await client.messages.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            system=manager.system,
            messages=manager.get_messages(),
        )
        manager.add_assistant_message(response.content[0].text)
        usages.append(response.usage.model_dump())
    await client.close()
    return usages


def price(usages: list[dict]) -> Decimal:
    from billing.pricing import cost_of

    total = Decimal(0)
    for usage in usages:
        cost = cost_of(model=MODEL, usage=usage)
        if cost is None:
            raise RuntimeError(f"{MODEL} has no price in the bench database")
        total += cost
    return total


def tally(usages: list[dict]) -> dict:
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
            "output_tokens")  # fmt: skip
    sums = {k: sum(u.get(k) or 0 for u in usages) for k in keys}
    all_input = sums["input_tokens"] + sums["cache_creation_input_tokens"]
    all_input += sums["cache_read_input_tokens"]
    return sums | {"cache_hit_share": sums["cache_read_input_tokens"] / all_input}


def run() -> dict:
    system, texts = script()
    ours = asyncio.run(run_ours(system, texts))
    guide = asyncio.run(run_guide(system, texts))
    ours_cost, guide_cost = price(ours), price(guide)
    ours_t, guide_t = tally(ours), tally(guide)
    return {
        "cost_ratio_vs_guide_manager": round(float(ours_cost / guide_cost), 4),
        "cache_hit_share.ours": round(ours_t["cache_hit_share"], 4),
        "cache_hit_share.guide": round(guide_t["cache_hit_share"], 4),
        "details": {
            "ours_usd": str(ours_cost),
            "guide_usd": str(guide_cost),
            "ours_tokens": ours_t,
            "guide_tokens": guide_t,
            "ours_prompt_tokens_per_turn": [
                u["input_tokens"] + u["cache_creation_input_tokens"] + u["cache_read_input_tokens"]
                for u in ours
            ],
        },
    }
