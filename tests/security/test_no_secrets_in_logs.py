"""All the output of a real server process during chats (a reply, an auth failure, retries,
search, rename, export) holds neither the API key nor any message text.

daphne runs with LOG_LEVEL=DEBUG and a recognisable key, against its own fake Anthropic API
that accepts only that key; its stdout and stderr are captured whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import websockets
from django.test import Client

from fakeanthropic import FakeAnthropic, Scripted
from fakeanthropic.server import serve_in_thread
from tests import servers
from tests.factories import ConversationFactory, UserFactory
from tests.servers import ROOT, free_port, stop
from tests.sockets import MESSAGE_ID_RE

KEY = "sk-ant-api03-LOGMARKERkey0123456789abcdefXYZ"
QUESTION = "QUESTIONMARKER my confidential question"
ANSWER = "ANSWERMARKER the confidential answer"
TITLE = "TITLEMARKER private project"
SEARCH = "SEARCHMARKER"
# daphne's plain access log prints query strings (search terms): production turns it off.
PRODUCTION_DAPHNE_OPTIONS = ["--access-log", "/dev/null"]
MARKERS = ["LOGMARKERkey0123456789", "QUESTIONMARKER", "ANSWERMARKER", "TITLEMARKER", SEARCH]


@pytest.fixture
def fake_with_key():
    app = FakeAnthropic(ttft=0.01, tokens_per_second=2000.0, api_key=KEY)
    base_url, stop_fake = serve_in_thread(app)
    yield app, base_url
    stop_fake()


@pytest.fixture
def server(transactional_db, fake_with_key, tmp_path):
    """daphne on the test database, all output to one file."""
    _, base_url = fake_with_key
    port = free_port()
    output = tmp_path / "daphne.log"
    env = os.environ | {
        "DATABASE_URL": servers.test_database_url(),
        "ANTHROPIC_API_KEY": KEY,
        "ANTHROPIC_BASE_URL": base_url,
        "DEBUG": "false",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "json",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CLAUDE_RETRY_BASE_DELAY": "0.01",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
             *PRODUCTION_DAPHNE_OPTIONS, "chatsite.asgi:application"],
            cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while b"Listening on TCP address" not in output.read_bytes():
        assert process.poll() is None and time.monotonic() < deadline, output.read_text()
        time.sleep(0.05)
    yield f"127.0.0.1:{port}", output, process
    stop(process)


async def chat(host: str, cookie: str, conversation_id: int, texts: list[str]) -> list[str]:
    """Send each text over the real socket and wait for its reply to end; return frames."""
    frames = []
    async with websockets.connect(
        f"ws://{host}/ws/conversations/{conversation_id}/",
        origin=f"http://{host}",
        additional_headers={"Cookie": f"sessionid={cookie}"},
    ) as socket:
        for text in texts:
            await socket.send(json.dumps({"type": "send", "text": text, "HEADERS": {}}))
            reply_id = None
            while True:
                frame = await asyncio.wait_for(socket.recv(), timeout=20)
                frames.append(frame)
                if reply_id is None and "beforeend:#messages" in frame:
                    reply_id = MESSAGE_ID_RE.findall(frame)[-1]
                elif reply_id and frame.startswith(f'<article id="message-{reply_id}"'):
                    break  # the finished reply
    return frames


def test_logs_hold_no_key_and_no_message_text(server, fake_with_key):
    host, output, process = server
    fake, _ = fake_with_key
    user = UserFactory()
    conversation = ConversationFactory(user=user, title=TITLE)
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    fake.script(
        Scripted(text=ANSWER),  # a reply
        Scripted(status=401),  # the key refused: the error path
        Scripted(status=529),  # overloaded, retried, then answered
        Scripted(text=ANSWER),
    )
    frames = asyncio.run(chat(host, cookie, conversation.pk, [QUESTION, QUESTION, QUESTION]))
    assert any(ANSWER.split()[0] in f for f in frames), "the chat really happened"

    # HTTP side: a search, a rename and an export that carry the text in their requests.
    opener = urllib.request.build_opener()
    opener.addheaders = [("Cookie", f"sessionid={cookie}")]
    for path in (
        f"/search/?q={SEARCH}",
        f"/c/{conversation.pk}/export.md",
        f"/c/{conversation.pk}/export.json",
        "/accounts/profile/data.json",
    ):
        with opener.open(f"http://{host}{path}") as response:
            assert response.status == 200, path

    stop(process)  # flush everything the process wrote
    log = output.read_text(errors="replace")
    assert "claude.call" in log, "the calls were logged (the capture works)"
    assert '"error_kind": "authentication"' in log, "the refused key was logged as such"
    found = [line for line in log.splitlines() if any(m in line for m in MARKERS)]
    assert found == [], f"found in the logs: {found}"


def test_production_commands_turn_off_daphnes_plain_access_log():
    for path in ("docker-compose.yml", "Dockerfile"):
        text = (ROOT / path).read_text()
        assert '"--access-log", "/dev/null"' in text, path
