"""Instructions per chat turn of the app's own process, counted by valgrind (not timed).

    python -m bench.instructions [--turns 50] [--history 10]

The time a turn's ORM calls take moves with the machine by ±10-20% between runs minutes
apart; the instructions they execute do not (valgrind's callgrind counts them the same for
the same code and data: two runs of 50 turns differed by 0.002%). So a change to the
turn's database code is compared here first, then timed in `latency` and `load`.

For each measure this process makes the conversations (N earlier messages each: the
`history` benchmark's rows), then a child process under callgrind imports the app and
runs `turns` of them one after another: the turn's start (`_create_turn`), or the start
and the reply's save and settlement (`_finish_and_log`, with a fixed 190-token outcome and
its log record). The same child with no turns gives what importing costs; the difference,
divided by the turns, is a turn's instructions. Postgres runs in its own processes and is
not counted. Prints the figures and writes bench/results/instructions.json (ignored by
git): measured on request, not part of `make bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.harness import RESULTS, ROOT, database_url, ensure_database, migrate, setup_django

CHILD = """
import json, os, sys
sys.path.insert(0, os.getcwd())
from bench.harness import setup_django
setup_django()
from conversations import turns
from conversations.claude.streaming import ReplyOutcome, apply_outcome
kind, ids = sys.argv[1], json.loads(sys.argv[2])
answer = "Here is a reply of a few words. " * 25
for i, conversation_id in enumerate(ids):
    conversation, plan, question, reply = turns._create_turn(conversation_id, f"Hello {i}")
    if kind == "start":
        continue
    outcome = ReplyOutcome(
        usage={"input_tokens": 700, "cache_creation_input_tokens": 0,
               "cache_read_input_tokens": 600, "output_tokens": 190},
        request_id="req_bench", model=conversation.effective_model, final_usage=True,
        ttft_ms=300, duration_ms=4000, stop_reason="end_turn",
    )
    fields = apply_outcome(reply, outcome, answer, counted=True)
    turns._finish_and_log(conversation, reply, fields, plan, outcome)
"""
COLLECTED = re.compile(r"Collected : (\d+)")


def conversations(count: int, history: int) -> list[int]:
    from bench import data

    data.reset()
    user = data.make_user("instructions")
    ids = data.make_conversations(user, count)
    if history > 2:
        for conversation_id in ids:
            data.add_history(conversation_id, history - 2)
    data.tidy()
    return ids


def instructions(kind: str, ids: list[int]) -> int:
    """Instructions of a child process running the turns of `ids` under callgrind."""
    env = dict(os.environ) | {"PYTHONHASHSEED": "0", "DATABASE_URL": database_url()}
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", CHILD, kind, json.dumps(ids)],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__)
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--history", type=int, default=10, help="earlier messages per turn")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    ensure_database()
    setup_django()
    migrate()
    base = instructions("start", [])
    figures = {}
    for kind in ("start", "start+finish"):
        total = instructions(kind, conversations(args.turns, args.history))
        figures[kind] = round((total - base) / args.turns)
        print(f"{kind}: {figures[kind] / 1e6:.2f} M instructions per turn", flush=True)
    out = Path(RESULTS) / "instructions.json"
    out.write_text(json.dumps({"turns": args.turns, "history": args.history} | figures) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
