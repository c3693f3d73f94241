"""A fake Anthropic API (Messages, count_tokens, Message Batches) as a pure ASGI app.

It speaks the real wire protocol (JSON bodies, SSE events, error bodies, headers), so the
real ``anthropic`` SDK can talk to it, in-process through ``StreamingASGITransport`` or
over loopback through uvicorn (``serve_in_thread`` / ``python -m fakeanthropic``).
"""

from .app import FakeAnthropic
from .cache import PromptCache, min_cacheable_tokens
from .replies import demo_reply
from .scripting import Scripted
from .server import aserving, serve_in_thread, serving
from .sse import DropConnection
from .tokens import count_tokens, input_tokens, split_tokens
from .transport import FAKE_BASE_URL, StreamingASGITransport, fake_client_kwargs

__all__ = [
    "FAKE_BASE_URL",
    "DropConnection",
    "FakeAnthropic",
    "PromptCache",
    "Scripted",
    "StreamingASGITransport",
    "aserving",
    "count_tokens",
    "demo_reply",
    "fake_client_kwargs",
    "input_tokens",
    "min_cacheable_tokens",
    "serve_in_thread",
    "serving",
    "split_tokens",
]
