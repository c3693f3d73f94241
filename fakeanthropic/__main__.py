"""python -m fakeanthropic --host 127.0.0.1 --port 8765 --ttft 0.3 --tps 50 ..."""

from __future__ import annotations

import argparse
import sys

from .app import FakeAnthropic
from .server import serve_forever


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fakeanthropic",
        description="Serve a fake Anthropic Messages API (real wire protocol) with uvicorn.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--ttft", type=float, default=0.3, help="seconds to the first delta")
    parser.add_argument("--tps", type=float, default=50.0, help="output tokens per second")
    parser.add_argument("--tokens-per-delta", type=int, default=3)
    parser.add_argument("--api-key", default=None, help="accept only this key (default: any)")
    parser.add_argument(
        "--batch-seconds-per-request", type=float, default=0.05, help="batch processing pace"
    )
    parser.add_argument("--log-level", default="warning")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    app = FakeAnthropic(
        ttft=args.ttft,
        tokens_per_second=args.tps,
        tokens_per_delta=args.tokens_per_delta,
        api_key=args.api_key,
        batch_seconds_per_request=args.batch_seconds_per_request,
    )
    print(
        f"fake Anthropic API on http://{args.host}:{args.port} "
        f"(ttft={args.ttft}s, {args.tps} tok/s, {args.tokens_per_delta} tok/delta)",
        file=sys.stderr,
        flush=True,
    )
    serve_forever(app, args.host, args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
