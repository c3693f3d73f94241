"""The WebSocket server's cost per frame sent (daphne on autobahn, on Twisted's TCP)."""

from __future__ import annotations

from pprint import pformat


def _plain(value, *args, **kwargs):
    return value


class _PrettyWhenShown:
    """`pformat(value)`, made only if a log message that holds it is formatted."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return format(pformat(self.value), spec)

    def __str__(self) -> str:
        return pformat(self.value)


def skip_frame_log_formatting() -> None:
    """autobahn formats the arguments of a debug message for every WebSocket frame it sends
    (`hltype`/`hlval`: qualified names coloured with click), with debug logging on or off:
    2-3% of the process's CPU at 300 streams. Its websocket module gets pass-through
    versions (a debug message, when on, shows the plain values). Likewise every connection
    pretty-printed its 40 settings for a debug message (`pformat`: 1.2% of the CPU in the
    cpu benchmark, a socket per turn); that is now done only if the message is written. No
    Django here: the bench's bare relay applies it too."""
    import autobahn.websocket.protocol

    autobahn.websocket.protocol.hltype = autobahn.websocket.protocol.hlval = _plain
    autobahn.websocket.protocol.pformat = _PrettyWhenShown
    # The module's one other use of it must still give a string.
    autobahn.websocket.protocol.Timings.__str__ = lambda self: pformat(self._timings)


def write_frames_at_once() -> None:
    """Send a frame to the socket when it is written, if nothing is waiting before it.

    Twisted's TCP connection only buffers a write and asks the reactor to watch the socket
    for writing (an epoll_ctl), then sends from the next turn of the loop and stops watching
    (another epoll_ctl): three system calls and a loop turn for each frame, a fifth of the
    bare relay's CPU (measured in bench's cpu load: 145 -> 111-119 ms per 1k tokens). Here
    the write is tried at once, as asyncio's transports do; what the kernel does not take
    (a slow reader, a full send buffer), an error included, goes the usual way: buffered
    behind nothing, sent when the socket is writable, the error found there and the
    connection closed as before. TLS connections (not used: TLS ends at the proxy) and
    anything but bytes keep Twisted's own path. Like the above, the bare relay applies it.
    """
    from twisted.internet import tcp
    from twisted.internet._newtls import ConnectionMixin

    if getattr(tcp.Connection.write, "at_once", False):
        return

    def write(self, data: bytes) -> None:
        if (
            type(data) is bytes
            and data
            and not self.TLS
            and self.connected
            and not self.disconnecting
            and not self._writeDisconnected
            and not self._tempDataLen
            and self.offset == len(self.dataBuffer)
        ):
            try:
                sent = self.socket.send(data)
            except OSError:  # would block, or the peer is gone: doWrite will find out
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        ConnectionMixin.write(self, data)

    write.at_once = True
    tcp.Connection.write = write
