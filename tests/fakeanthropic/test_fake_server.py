"""Serving over loopback: serve_in_thread helpers and ``python -m fakeanthropic``."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx2

from fakeanthropic import FakeAnthropic, aserving, serve_in_thread, serving

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_serve_in_thread_and_stop():
    app = FakeAnthropic(ttft=0.0, tokens_per_second=10_000.0)
    base_url, stop = serve_in_thread(app)
    try:
        async with anthropic.AsyncAnthropic(api_key="k", base_url=base_url) as c:
            msg = await c.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=20,
                messages=[{"role": "user", "content": "x"}],
            )
        assert msg.usage.output_tokens == 20
    finally:
        stop()
    stop()  # idempotent
    port = int(base_url.rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


async def test_context_managers():
    with serving(FakeAnthropic()) as url:
        assert httpx2.get(f"{url}/_fake/health").json() == {"ok": True}
    async with aserving(FakeAnthropic()) as url, httpx2.AsyncClient() as http:
        assert (await http.get(f"{url}/_fake/health")).json() == {"ok": True}


async def test_many_concurrent_streams_over_loopback():
    app = FakeAnthropic(ttft=0.05, tokens_per_second=200.0, tokens_per_delta=3)
    async with aserving(app) as url:
        limits = httpx2.Limits(max_connections=200)
        http = httpx2.AsyncClient(limits=limits, timeout=30)
        async with anthropic.AsyncAnthropic(api_key="k", base_url=url, http_client=http) as c:

            async def one(i: int) -> str:
                async with c.messages.stream(
                    model="claude-sonnet-4-6",
                    max_tokens=100,
                    messages=[{"role": "user", "content": f"[[fake:tokens=60]] n{i}"}],
                ) as s:
                    return (await s.get_final_message()).content[0].text

            t0 = time.monotonic()
            texts = await asyncio.gather(*(one(i) for i in range(150)))
            elapsed = time.monotonic() - t0
    assert len(set(texts)) == 1
    assert elapsed < 3.0  # 0.05 + 19 * 0.015 s each, concurrently


def test_python_dash_m_serves():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakeanthropic", "--port", str(port), "--ttft", "0",
         "--tps", "5000", "--api-key", "sekrit"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx2.get(f"{url}/_fake/health", timeout=1)
                break
            except httpx2.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.05)
        client = anthropic.Anthropic(api_key="sekrit", base_url=url, max_retries=0)
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=30, messages=[{"role": "user", "content": "x"}]
        ) as s:
            assert "".join(s.text_stream)
        bad = anthropic.Anthropic(api_key="wrong", base_url=url, max_retries=0)
        try:
            bad.messages.create(
                model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "x"}]
            )
            raise AssertionError("expected a 401")
        except anthropic.AuthenticationError:
            pass
    finally:
        proc.terminate()
        proc.wait(10)
