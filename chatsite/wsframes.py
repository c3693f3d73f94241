"""The WebSocket server's cost per frame sent (daphne on autobahn)."""

from __future__ import annotations


def _plain(value, *args, **kwargs):
    return value


def skip_frame_log_formatting() -> None:
    """autobahn formats the arguments of a debug message for every WebSocket frame it sends
    (`hltype`/`hlval`: qualified names coloured with click), with debug logging on or off:
    2-3% of the process's CPU at 300 streams. Its websocket module gets pass-through
    versions (a debug message, when on, shows the plain values). No Django here: the bench's
    bare relay applies it too."""
    import autobahn.websocket.protocol

    autobahn.websocket.protocol.hltype = autobahn.websocket.protocol.hlval = _plain
