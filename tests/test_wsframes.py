"""The server's frame path: a frame goes to the socket when written (chatsite.wsframes)."""

from __future__ import annotations

import socket
from pprint import pformat

import pytest
from twisted.internet import main, tcp
from twisted.internet.protocol import Protocol

import chatsite.asgi  # noqa: F401  (applies the server tweaks, as daphne's import does)


class Reactor:
    """What a connection asks of its reactor: watch its socket for writing, or stop."""

    def __init__(self) -> None:
        self.writers: set = set()
        self.watch_requests = 0

    def addWriter(self, writer) -> None:
        self.watch_requests += 1
        self.writers.add(writer)

    def removeWriter(self, writer) -> None:
        self.writers.discard(writer)


@pytest.fixture
def pair():
    """A Twisted TCP connection on one end of a loopback TCP connection, the plain socket
    on the other."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        theirs = socket.create_connection(listener.getsockname())
        ours, _ = listener.accept()
    reactor = Reactor()
    connection = tcp.Connection(ours, Protocol(), reactor)
    connection.connected = True
    yield connection, theirs, reactor
    ours.close()
    theirs.close()


def read_all(sock: socket.socket, size: int, connection=None) -> bytes:
    got = b""
    sock.settimeout(0.05)
    while len(got) < size:
        try:
            got += sock.recv(1 << 20)
        except TimeoutError:
            if connection is None:
                break
            connection.doWrite()  # the reactor's turn: the socket is writable again
    return got


def test_a_frame_goes_out_when_written_without_waiting_for_the_loop(pair):
    connection, theirs, reactor = pair
    connection.write(b"frame one")
    connection.write(b"frame two")
    assert read_all(theirs, 18) == b"frame oneframe two"
    assert reactor.watch_requests == 0  # no epoll_ctl, no loop turn


def test_what_the_kernel_does_not_take_is_sent_later_in_order(pair):
    connection, theirs, reactor = pair
    connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 8192  # 2 MB: more than the send buffer holds
    connection.write(big)
    connection.write(b"after")  # behind what is waiting, not ahead of it
    assert connection in reactor.writers
    assert read_all(theirs, len(big) + 5, connection) == big + b"after"
    assert connection not in reactor.writers  # drained: no longer watched
    connection.write(b"again")
    assert read_all(theirs, 5) == b"again"


def test_a_write_to_a_closed_peer_is_found_by_the_reactor_not_raised(pair):
    connection, theirs, reactor = pair
    theirs.close()
    for _ in range(100):  # the first writes may be taken: the peer's reset comes after
        connection.write(b"x" * 100)
        if connection in reactor.writers:
            break
    assert connection in reactor.writers
    assert connection.doWrite() == main.CONNECTION_LOST


def test_text_is_refused_as_before(pair):
    connection, _, _ = pair
    with pytest.raises(TypeError):
        connection.write("text")


def test_a_connections_settings_are_pretty_printed_only_when_the_debug_message_is_written(
    monkeypatch,
):
    """autobahn logs a connection's settings at debug level, pretty-printed with or without
    debug logging: the printing now waits until the message is formatted."""
    import autobahn.websocket.protocol as protocol
    from twisted.logger import formatEvent

    from chatsite import wsframes

    made = []

    def counting(value):
        made.append(value)
        return pformat(value)

    monkeypatch.setattr(wsframes, "pformat", counting)
    settings = [("autoPingInterval", 0, "factory"), ("openHandshakeTimeout", 5, "factory")]
    event = {"log_format": "\n{attrs}", "attrs": protocol.pformat(settings)}
    assert made == []  # nothing printed while the message is only made
    assert formatEvent(event) == "\n" + pformat(settings)
    assert made == [settings]
    timings = protocol.Timings()
    timings.track("onOpen")
    assert isinstance(str(timings), str) and "onOpen" in str(timings)
