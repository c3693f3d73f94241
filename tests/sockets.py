"""Open the chat socket as a logged-in user, the way a browser does."""

from __future__ import annotations

import html
import json
import re

from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatsite.asgi import application

DELTA_RE = re.compile(r'<div hx-swap-oob="beforeend:#message-(\d+)-stream">(.*?)</div>', re.S)
MESSAGE_ID_RE = re.compile(r'<article id="message-(\d+)"')


async def session_cookie(user) -> str:
    client = Client()
    await sync_to_async(client.force_login)(user)
    return client.cookies["sessionid"].value


async def open_socket(user, conversation_id: int, *, origin: str = "http://127.0.0.1"):
    """Connect to a conversation's socket; return (communicator, connected, close code)."""
    headers = [(b"origin", origin.encode()), (b"host", b"127.0.0.1")]
    if user is not None:
        headers.append((b"cookie", f"sessionid={await session_cookie(user)}".encode()))
    communicator = WebsocketCommunicator(
        application, f"/ws/conversations/{conversation_id}/", headers=headers
    )
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def send_text(communicator, text: str) -> None:
    await communicator.send_to(text_data=json.dumps({"text": text, "HEADERS": {}}))


async def collect_reply(communicator, *, wait: float = 10) -> dict:
    """Read frames until a reply finishes; return its id, deltas and final frame."""
    reply_id = None
    deltas: list[str] = []
    frames: list[str] = []
    while True:
        frame = await communicator.receive_from(timeout=wait)
        frames.append(frame)
        if reply_id is None and "beforeend:#messages" in frame:
            reply_id = int(MESSAGE_ID_RE.findall(frame)[-1])
            continue
        for message_id, text in DELTA_RE.findall(frame):
            if int(message_id) == reply_id:
                deltas.append(html.unescape(text))
        if reply_id is not None and frame.startswith(f'<article id="message-{reply_id}"'):
            return {"reply_id": reply_id, "deltas": deltas, "final": frame, "frames": frames}


def plain(messages: list[dict]) -> list[dict]:
    """API messages with block content (cache breakpoints) flattened back to text."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = "".join(block["text"] for block in content)
        out.append({"role": message["role"], "content": content})
    return out
