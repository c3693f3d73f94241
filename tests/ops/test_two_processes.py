"""Two real daphne processes on one Postgres and one Redis behind deploy/nginx.conf, as
docker-compose runs web1, web2 and proxy."""

import asyncio
import http.cookiejar
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import redis
import websockets
from asgiref.sync import sync_to_async
from django.db import connections

from fakeanthropic import Scripted
from tests.conftest import TEST_API_KEY
from tests.factories import ConversationFactory, UserFactory
from tests.ops.conftest import METRICS_TOKEN, sample
from tests.sockets import collect_reply, session_cookie

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/13"  # this module's own Redis database


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _start_web(port: int, env: dict) -> subprocess.Popen:
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
               "chatsite.asgi:application"]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:  # wait for the process to answer its health check
        try:
            if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                return process
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("daphne did not start")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def webs(django_db_setup, django_db_blocker, fake_server, tmp_path_factory):
    """web1 and web2: one image, one database, one Redis, separate processes."""
    from django.db import connection

    redis.Redis.from_url(REDIS_URL).flushdb()
    db = connection.settings_dict
    env = os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": REDIS_URL,
        "ANTHROPIC_BASE_URL": fake_server.base_url,
        "ANTHROPIC_API_KEY": TEST_API_KEY,
        "METRICS_TOKEN": METRICS_TOKEN,
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    ports = [_free_port(), _free_port()]
    processes = [_start_web(port, env) for port in ports]
    yield [f"127.0.0.1:{port}" for port in ports]
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=20)
    redis.Redis.from_url(REDIS_URL).flushdb()


NGINX_MAIN = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 128; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    include {dir}/chatsite.conf;
}}
"""


@pytest.fixture(scope="module")
def proxy(webs, tmp_path_factory):
    """nginx with deploy/nginx.conf, its upstreams pointed at the two processes."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert nginx, "nginx (Debian's nginx-light) is installed by `make test`"
    directory = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    site = site.replace("web1:8000", webs[0]).replace("web2:8000", webs[1])
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (directory / "chatsite.conf").write_text(site)
    (directory / "nginx.conf").write_text(NGINX_MAIN.format(dir=directory))
    process = subprocess.Popen(
        [nginx, "-p", str(directory), "-e", str(directory / "error.log"),
         "-c", str(directory / "nginx.conf"), "-g", "daemon off;"]
    )  # fmt: skip
    deadline = time.monotonic() + 15
    while True:
        try:
            if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("nginx did not start: " + (directory / "error.log").read_text())
        time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=20)


class Socket:
    """A websockets connection with the WebsocketCommunicator call that collect_reply uses."""

    def __init__(self, ws) -> None:
        self.ws = ws

    async def receive_from(self, timeout: float = 10) -> str:  # noqa: ASYNC109 (same API)
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))


@asynccontextmanager
async def chat_socket(host: str, user, conversation_id: int):
    cookie = await session_cookie(user)
    async with websockets.connect(
        f"ws://{host}/ws/conversations/{conversation_id}/",
        origin="http://127.0.0.1",
        additional_headers={"Cookie": f"sessionid={cookie}"},
    ) as ws:
        yield Socket(ws)


async def scrape(host: str) -> str:
    status, body = await asyncio.to_thread(_get, f"http://{host}/metrics", METRICS_TOKEN)
    assert status == 200, body
    return body


@pytest.fixture
async def chat(transactional_db):
    """A user with one conversation, committed so both processes see them."""
    user = await sync_to_async(UserFactory)()
    conversation = await sync_to_async(ConversationFactory)(user=user)
    yield user, conversation
    await sync_to_async(connections.close_all)()


async def test_both_processes_are_ready_on_the_shared_services(webs, transactional_db):
    for host in webs:
        status, body = await asyncio.to_thread(_get, f"http://{host}/readyz")
        assert status == 200, body
        checks = json.loads(body)["checks"]
        assert checks["redis"]["ok"] and checks["database"]["ok"]


async def test_chats_work_on_both_processes(webs, chat, fake_api):
    user, conversation = chat
    fake_api.script(Scripted(text="Answer from one."), Scripted(text="Answer from two."))
    for host, expected in zip(webs, ["Answer from one.", "Answer from two."], strict=True):
        async with chat_socket(host, user, conversation.pk) as socket:
            await socket.send({"text": f"Hello {host}"})
            result = await collect_reply(socket)
        assert "".join(result["deltas"]) == expected


async def test_a_reply_streams_to_a_tab_on_the_other_process(webs, chat, fake_api):
    user, conversation = chat
    fake_api.script(Scripted(tokens=30, tokens_per_second=100))
    web1, web2 = webs
    async with (
        chat_socket(web1, user, conversation.pk) as sender,
        chat_socket(web2, user, conversation.pk) as watcher,
    ):
        await sender.send({"text": "Tell me something"})
        sent, watched = await asyncio.gather(collect_reply(sender), collect_reply(watcher))
    assert watched["reply_id"] == sent["reply_id"]
    assert len(watched["deltas"]) >= 2  # live deltas relayed through Redis, not a reload
    assert "".join(watched["deltas"]) == "".join(sent["deltas"])


async def test_each_process_counts_its_own_calls(webs, chat, fake_api):
    user, conversation = chat
    web1 = webs[0]
    before = [await scrape(host) for host in webs]
    fake_api.script(Scripted(text="Counted.", output_tokens=11))
    async with chat_socket(web1, user, conversation.pk) as socket:
        await socket.send({"text": "Count me"})
        await collect_reply(socket)
    after = [await scrape(host) for host in webs]

    tokens = "chatsite_claude_tokens_total"
    model = {"model": "claude-sonnet-4-6", "kind": "output"}
    assert sample(after[0], tokens, **model) - sample(before[0], tokens, **model) == 11
    assert sample(after[1], tokens, **model) == sample(before[1], tokens, **model)
    duration = "chatsite_claude_duration_seconds_count"
    assert sample(after[0], duration) - sample(before[0], duration) == 1


async def test_active_streams_are_counted_where_they_run(webs, chat, fake_api):
    user, conversation = chat
    web1 = webs[0]
    fake_api.script(Scripted(tokens=400, tokens_per_second=20))  # ~20 s unless stopped
    async with chat_socket(web1, user, conversation.pk) as socket:
        await socket.send({"text": "Take your time"})
        frame = await socket.receive_from()
        while "beforeend:#message-" not in frame:  # the first delta: it is streaming
            frame = await socket.receive_from()
        during = [await scrape(host) for host in webs]
        reply_id = int(frame.split("#message-")[1].split("-")[0])
        await socket.send({"type": "stop", "message_id": reply_id})
        while not frame.startswith(f'<article id="message-{reply_id}"'):
            frame = await socket.receive_from()
    after = [await scrape(host) for host in webs]
    assert sample(during[0], "chatsite_active_streams") == 1
    assert sample(during[1], "chatsite_active_streams") == 0
    assert sample(after[0], "chatsite_active_streams") == 0


async def test_chats_stream_through_the_proxy(proxy, chat, fake_api):
    user, conversation = chat
    fake_api.script(*[Scripted(tokens=30, tokens_per_second=200) for _ in range(2)])
    async with (  # two sockets at once: least_conn sends them to different processes
        chat_socket(proxy, user, conversation.pk) as first,
        chat_socket(proxy, user, conversation.pk) as second,
    ):
        for sender in (first, second):
            await sender.send({"text": "Through nginx"})
            # Both tabs read each reply to its end, so neither holds a stale frame and
            # no reply is still being saved when the test's data is flushed.
            results = await asyncio.gather(collect_reply(first), collect_reply(second))
            for result in results:
                assert len(result["deltas"]) >= 2  # streamed, not buffered by the proxy


def _post_through(proxy: str, user_cookie: str, path: str) -> int:
    """A browser's form POST: session cookie, CSRF token and an Origin with the port."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [("Cookie", f"sessionid={user_cookie}")]
    opener.open(f"http://{proxy}/")
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    request = urllib.request.Request(
        f"http://{proxy}{path}",
        data=b"",
        headers={"X-CSRFToken": csrf, "Origin": f"http://{proxy}",
                 "Cookie": f"sessionid={user_cookie}; csrftoken={csrf}"},
    )  # fmt: skip
    opener = urllib.request.build_opener(NoRedirect)
    try:
        return opener.open(request).status
    except urllib.error.HTTPError as error:
        return error.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


async def test_forms_pass_the_csrf_origin_check_through_the_proxy(proxy, chat):
    user, _ = chat
    cookie = await session_cookie(user)
    status = await asyncio.to_thread(_post_through, proxy, cookie, "/c/new/")
    assert status == 302  # a new conversation; 403 if the proxy dropped the Host's port


async def test_the_proxy_keeps_a_callers_request_id(proxy, transactional_db):
    def get_readyz():
        request = urllib.request.Request(
            f"http://{proxy}/readyz", headers={"X-Request-ID": "lb-7f3e"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["X-Request-ID"]

    assert await asyncio.to_thread(get_readyz) == (200, "lb-7f3e")
