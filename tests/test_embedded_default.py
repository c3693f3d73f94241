"""`make run` on a fresh checkout: SQLite, in-memory layer, demo model, generated admin."""

import asyncio
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import websockets

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def make_run(tmp_path):
    """Start `make run` on a free port with nothing configured but a scratch SQLite file."""
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "ANTHROPIC_", "MAKE", "MFLAGS"))
        and k not in {"SECRET_KEY", "DEBUG", "REDIS_URL", "STATIC_MANIFEST"}
    }
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "DEMO_TTFT": "0.05"}
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        output.append(line)
        if "Serving Chatsite" in line:
            break
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port, "".join(output)
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def _login(port: int, username: str, password: str) -> tuple[urllib.request.OpenerDirector, str]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    base = f"http://127.0.0.1:{port}"
    page = opener.open(f"{base}/accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode(
        {"username": username, "password": password, "csrfmiddlewaretoken": token}
    ).encode()
    opener.addheaders = [("Referer", f"{base}/accounts/login/")]
    opener.open(f"{base}/accounts/login/", form)
    cookies = {c.name: c.value for c in jar}
    assert "sessionid" in cookies, "login failed"
    return opener, "; ".join(f"{k}={v}" for k, v in cookies.items())


def test_make_run_serves_login_and_a_streamed_demo_reply(make_run):
    port, output = make_run
    match = re.search(r"username: (\S+)\s+password: (\S+)", output)
    assert match, output
    username, password = match.groups()
    assert len(password) >= 12

    login_page = urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/")
    assert login_page.status == 200
    assert "Demo mode" in login_page.read().decode()

    opener, cookie = _login(port, username, password)
    home = opener.open(f"http://127.0.0.1:{port}/").read().decode()
    token = re.search(r'"X-CSRFToken": "([^"]+)"', home).group(1)
    created = opener.open(
        urllib.request.Request(
            f"http://127.0.0.1:{port}/c/new/",
            data=urllib.parse.urlencode({"csrfmiddlewaretoken": token}).encode(),
        )
    )
    conversation_id = re.search(r"/c/(\d+)/", created.url).group(1)

    async def chat() -> list[str]:
        frames = []
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/conversations/{conversation_id}/",
            additional_headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"},
        ) as ws:
            await ws.send(json.dumps({"text": "Hello demo"}))
            while True:
                frame = await asyncio.wait_for(ws.recv(), timeout=30)
                frames.append(frame)
                if 'data-status="complete"' in frame and frame.startswith("<article"):
                    return frames

    frames = asyncio.run(chat())
    deltas = [f for f in frames if "beforeend:#message-" in f and "-stream" in f]
    assert len(deltas) >= 2, "the demo reply streams in several frames"
    assert "<li>" in frames[-1] and "<pre" in frames[-1], "markdown list and code rendered"
