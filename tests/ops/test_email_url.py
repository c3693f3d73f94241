"""EMAIL_URL: the error-rate alert reaches the admins through a real SMTP server."""

import email
import json
import socket

from aiosmtpd.controller import Controller

from tests.sqlite import run_on_sqlite

SCRIPT = """
import json
from django.conf import settings
from tests.ops.test_alerts import claude_call

for n in range(12):
    claude_call(failed=True, request_id=f"req_{n}")
print(json.dumps(settings.MAILERS["default"]["OPTIONS"] | {"password": "(set)"}))
"""


class Inbox:
    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls it by this name
        self.received.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


def test_the_alert_is_sent_through_the_smtp_server_of_email_url(tmp_path):
    with socket.socket() as probe:  # a free port (the controller checks it by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        out = run_on_sqlite(
            SCRIPT,
            tmp_path,
            EMAIL_URL=f"smtp://127.0.0.1:{port}",
            EMAIL_TIMEOUT="5",
            ADMINS="ops@example.com",
            SERVER_EMAIL="chatsite@example.com",
            ALERT_ERROR_RATE="0.5",
            ALERT_MIN_CALLS="10",
        )
    finally:
        server.stop()

    options = json.loads(out.splitlines()[-1])
    assert options == {"host": "127.0.0.1", "port": port, "timeout": 5, "password": "(set)"}
    [(sender, recipients, content)] = inbox.received  # one mail per incident
    assert sender == "chatsite@example.com"
    assert recipients == ["ops@example.com"]
    mail = email.message_from_bytes(content)
    assert "Claude error rate 100%" in mail["Subject"]
    assert "req_" in mail.get_payload()
