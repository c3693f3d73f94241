"""A chat turn on the embedded default (SQLite), where the turn's statements go one by one.

On Postgres they go to the server together (chatsite.db.run_together); the rest of the
suite covers that. This runs the same turn code on a SQLite file in a subprocess: the
reply's context start, the one-turn-at-a-time guard, a budget refusal that saves nothing,
and the settlement that gives the hold back.
"""

import json

from tests.sqlite import run_on_sqlite

SCRIPT = """
import json
from accounts.models import User
from billing import budgets
from billing.models import LedgerEntry, Reservation, UserMonth
from conversations.models import Conversation, Message
from conversations.turns import TurnRejected, _create_turn, _finish_turn
from conversations.claude.streaming import ReplyOutcome
from django.test import override_settings

user = User.objects.create(username="sqlite")
conversation = Conversation.objects.create(user=user)
out = {}
_, plan, question, reply = _create_turn(conversation.pk, "Hello")
conversation.refresh_from_db()
out["start"] = [plan.start_id, reply.context_start_id, conversation.context_start_id, question.pk]
out["held"] = str(UserMonth.objects.get().reserved) == str(plan.reservation.amount)
try:
    _create_turn(conversation.pk, "Again")
except TurnRejected as exc:
    out["second"] = str(exc)
reply.status = Message.Status.COMPLETE
reply.content = "Hi there"
outcome = ReplyOutcome()
outcome.usage = {"input_tokens": 20, "output_tokens": 5}
outcome.final_usage = True
outcome.model = reply.model
outcome.status = "complete"
_finish_turn(conversation, reply, ["status", "content"], plan, outcome)
month = UserMonth.objects.get()
out["after"] = [str(month.reserved), str(month.spent), Reservation.objects.count(),
                LedgerEntry.objects.count(), Message.objects.get(pk=question.pk).tokens_exact]
with override_settings(BUDGET_USER_MONTHLY_USD="0.001"):
    try:
        _create_turn(conversation.pk, "Too much")
    except TurnRejected as exc:
        out["refused"] = str(exc)
out["messages"] = list(Message.objects.order_by("id").values_list("role", flat=True))
out["reserved_after_refusal"] = str(UserMonth.objects.get().reserved)
print(json.dumps(out))
"""


def test_a_turn_on_sqlite(tmp_path):
    out = json.loads(run_on_sqlite(SCRIPT, tmp_path).splitlines()[-1])

    start, reply_start, conversation_start, question = out["start"]
    assert start == reply_start == conversation_start == question
    assert out["held"]
    assert "Wait for the reply to finish" in out["second"]
    reserved, spent, holds, ledger_rows, exact = out["after"]
    assert float(reserved) == 0 and float(spent) > 0
    assert (holds, ledger_rows, exact) == (0, 1, True)
    assert "monthly budget" in out["refused"]
    assert out["messages"] == ["user", "assistant"]  # the refused message was not saved
    assert float(out["reserved_after_refusal"]) == 0
