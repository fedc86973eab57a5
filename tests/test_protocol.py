"""nbio_helpers.protocol: the echo protocol and its water marks, without a socket.

Everything here is deterministic: bytes go in, the test says how many bytes each ``send()``
took, and the state is checked after each step. Then a fake socket drives a real
:class:`~nbio_helpers.connection.Connection` the same way, to check that the shim logs what the
protocol says.
"""

from __future__ import annotations

import asyncio
import socket
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbio_helpers.clients import request
from nbio_helpers.connection import Connection, echo_connection
from nbio_helpers.events import EOF, PAUSE, RECV, RESUME, SEND, SEND_WOULD_BLOCK, EventLog
from nbio_helpers.framing import LineFramer as FramingLineFramer
from nbio_helpers.loop.transport import Transport
from nbio_helpers.models import AsyncioServer
from nbio_helpers.protocol import (
    DEFAULT_HIGH_WATER,
    PAUSED,
    RESUMED,
    UNCHANGED,
    EchoProtocol,
    LineFramer,
    WaterMarks,
)
from nbio_helpers.server import HIGH_WATER, Server, wait_until


# ------------------------------------------------------------------ water marks
@pytest.mark.parametrize(
    ("high", "low", "expected"),
    [
        (None, None, (DEFAULT_HIGH_WATER, DEFAULT_HIGH_WATER // 4)),
        (1000, None, (1000, 250)),
        (1001, None, (1001, 250)),  # floor division, as asyncio
        (None, 100, (400, 100)),
        (None, 0, (0, 0)),
        (0, None, (0, 0)),
        (100, 100, (100, 100)),
        (100, 0, (100, 0)),
        (3, None, (3, 0)),
    ],
)
def test_water_mark_defaults_are_asyncios(high, low, expected):
    marks = WaterMarks(high, low)
    assert (marks.high, marks.low) == expected


@pytest.mark.parametrize(("high", "low"), [(None, None), (1000, None), (None, 100), (100, 7)])
def test_water_marks_match_what_an_asyncio_transport_does(high, low):
    """The same defaults as CPython's own transports: asked of a real one."""
    loop = asyncio.new_event_loop()
    a, b = socket.socketpair()
    try:

        async def limits():
            transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, a)
            transport.set_write_buffer_limits(high=high, low=low)
            result = transport.get_write_buffer_limits()  # (low, high)
            transport.close()
            await asyncio.sleep(0)
            return result

        low_water, high_water = loop.run_until_complete(limits())
    finally:
        loop.close()
        a.close()
        b.close()
    marks = WaterMarks(high, low)
    assert (marks.high, marks.low) == (high_water, low_water)


@pytest.mark.parametrize(
    ("high", "low", "error", "message"),
    [
        (-1, None, ValueError, "high_water must be >= 0 bytes, not -1"),
        (None, -5, ValueError, "low_water must be >= 0 bytes, not -5"),
        (10, 11, ValueError, r"low_water \(11\) must not be above high_water \(10\)"),
        (1.5, None, TypeError, "high_water must be an int .*not float"),
        ("64k", None, TypeError, "high_water must be an int .*not str"),
        (None, 2.0, TypeError, "low_water must be an int .*not float"),
        (True, None, TypeError, "high_water must be an int .*not bool"),
        (100, False, TypeError, "low_water must be an int .*not bool"),
    ],
)
def test_bad_water_marks_get_a_clear_error(high, low, error, message):
    with pytest.raises(error, match=message):
        WaterMarks(high, low)
    with pytest.raises(error, match=message):
        EchoProtocol(high, low)


def test_a_server_validates_its_marks_before_it_opens_anything():
    with pytest.raises(ValueError, match="must not be above"):
        Server(high_water=10, low_water=11)
    with pytest.raises(TypeError, match="not float"):
        Server(high_water=1e6)
    server = Server()
    assert (server.high_water, server.low_water) == (HIGH_WATER, HIGH_WATER // 4)
    assert Server(high_water=1000, low_water=10).low_water == 10


def test_water_marks_compare_and_show_by_value():
    assert WaterMarks(100) == WaterMarks(100, 25) != WaterMarks(100, 24)
    assert len({WaterMarks(100), WaterMarks(100, 25)}) == 1
    assert repr(WaterMarks(100)) == "WaterMarks(high=100, low=25)"


# ------------------------------------------------------------------- the echo
def test_the_reply_is_upper_case_and_waits_until_sent():
    protocol = EchoProtocol()
    assert protocol.receive_data(b"hello, w\xc3\xb6rld") is UNCHANGED
    assert bytes(protocol.data_to_send()) == b"HELLO, W\xc3\xb6RLD"  # ASCII letters only
    assert protocol.pending == 13 and protocol.wants_write and protocol.wants_read
    assert protocol.data_sent(13) is UNCHANGED
    assert protocol.pending == 0 and not protocol.wants_write


@pytest.mark.parametrize("size", range(11))
def test_a_partial_send_of_every_size_keeps_the_rest_in_order(size):
    protocol = EchoProtocol()
    protocol.receive_data(b"abcdefghij")
    protocol.data_sent(size)
    assert bytes(protocol.data_to_send()) == b"ABCDEFGHIJ"[size:]
    assert protocol.pending == 10 - size
    assert protocol.wants_write == (size < 10)


def test_a_send_of_more_than_is_pending_or_not_an_int_is_refused_and_loses_nothing():
    protocol = EchoProtocol()
    protocol.receive_data(b"abc")
    with pytest.raises(ValueError, match=r"data_sent\(4\): only 3 bytes were pending"):
        protocol.data_sent(4)
    with pytest.raises(ValueError, match=r"data_sent\(-1\)"):
        protocol.data_sent(-1)
    with pytest.raises(TypeError, match="not float"):
        protocol.data_sent(1.0)
    with pytest.raises(TypeError, match="not bool"):
        protocol.data_sent(True)
    with pytest.raises(TypeError, match="takes bytes, not str"):
        protocol.receive_data("abc")
    assert bytes(protocol.data_to_send()) == b"ABC"


def test_a_view_still_held_gives_a_clear_error_and_loses_nothing():
    protocol = EchoProtocol()
    protocol.receive_data(b"abc")
    view = protocol.data_to_send()
    with pytest.raises(TypeError):
        view[0] = 0  # read-only: the caller cannot change the reply
    with pytest.raises(RuntimeError, match="still held"):
        protocol.data_sent(1)
    with pytest.raises(RuntimeError, match="still held"):
        protocol.receive_data(b"d")
    view.release()
    sent = protocol.data_sent(1)  # (not inside an assert: pytest keeps its operands alive)
    assert sent is UNCHANGED and protocol.pending == 2


# ------------------------------------------------------------------- backpressure
def test_reading_pauses_just_above_the_high_mark_and_resumes_at_the_low_mark():
    protocol = EchoProtocol(high_water=10, low_water=4)
    assert protocol.receive_data(b"x" * 10) is UNCHANGED  # at the mark: not above it
    assert not protocol.paused and protocol.wants_read
    assert protocol.receive_data(b"x") is PAUSED  # 11 > 10
    assert protocol.paused and not protocol.wants_read
    assert protocol.receive_data(b"x") is UNCHANGED  # already paused: said once
    assert protocol.data_sent(7) is UNCHANGED  # 5 left: above the low mark, still paused
    assert protocol.paused
    assert protocol.data_sent(1) is RESUMED  # 4 left: at the low mark
    assert not protocol.paused and protocol.wants_read
    assert protocol.data_sent(4) is UNCHANGED  # already reading


def test_hysteresis_between_the_marks_no_pause_again_until_above_high():
    protocol = EchoProtocol(high_water=10, low_water=2)
    protocol.receive_data(b"x" * 11)  # PAUSED
    assert protocol.data_sent(9) is RESUMED  # 2 left
    assert protocol.receive_data(b"x" * 8) is UNCHANGED  # 10: between the marks, reading
    assert protocol.receive_data(b"x") is PAUSED  # 11


def test_the_default_low_mark_is_a_quarter_of_the_high_one():
    protocol = EchoProtocol(high_water=100)
    protocol.receive_data(b"x" * 101)
    assert protocol.data_sent(101 - 26) is UNCHANGED  # 26 left: above 25
    assert protocol.data_sent(1) is RESUMED  # 25 left


def test_marks_of_zero_pause_on_any_byte_and_resume_when_empty():
    protocol = EchoProtocol(high_water=0)
    assert protocol.receive_data(b"a") is PAUSED
    assert protocol.data_sent(1) is RESUMED


def test_one_receive_may_go_past_the_mark_by_all_of_its_bytes():
    protocol = EchoProtocol(high_water=4)
    assert protocol.receive_data(b"x" * 1000) is PAUSED
    assert protocol.pending == 1000  # nothing is dropped: the mark stops reading, not data


# ------------------------------------------------------------------------- EOF
def test_eof_with_nothing_pending_is_finished_at_once():
    protocol = EchoProtocol()
    assert protocol.receive_data(b"") is UNCHANGED
    assert protocol.peer_done and protocol.finished
    assert not protocol.wants_read and not protocol.wants_write


def test_eof_with_output_pending_finishes_once_everything_is_sent():
    protocol = EchoProtocol()
    protocol.receive_data(b"last words")
    protocol.receive_data(b"")
    assert protocol.peer_done and not protocol.finished
    assert not protocol.wants_read and protocol.wants_write
    protocol.data_sent(5)
    assert not protocol.finished
    protocol.data_sent(5)
    assert protocol.finished and not protocol.wants_write


def test_eof_while_paused_then_drained_resumes_and_finishes():
    protocol = EchoProtocol(high_water=4)
    protocol.receive_data(b"x" * 5)  # PAUSED
    protocol.receive_data(b"")  # a caller may still see the EOF (it read before pausing)
    assert protocol.data_sent(5) is RESUMED
    assert protocol.finished and not protocol.wants_read  # resumed, but the peer is done


def test_data_after_eof_is_a_caller_bug_and_a_second_eof_is_harmless():
    protocol = EchoProtocol()
    protocol.receive_data(b"")
    assert protocol.receive_data(b"") is UNCHANGED
    with pytest.raises(RuntimeError, match="after the end of stream"):
        protocol.receive_data(b"late")
    assert protocol.finished


def test_repr_says_the_state():
    protocol = EchoProtocol(high_water=4)
    assert "reading, 0 bytes pending" in repr(protocol)
    protocol.receive_data(b"x" * 5)
    assert "paused, 5 bytes" in repr(protocol)
    protocol.receive_data(b"")
    assert "peer done" in repr(protocol)
    protocol.data_sent(5)
    assert "finished" in repr(protocol)


# ------------------------------------------------------------------- properties
chunks = st.lists(st.binary(min_size=1, max_size=64), max_size=30)


@settings(max_examples=300, deadline=None)
@given(chunks, st.lists(st.integers(min_value=0, max_value=80), max_size=200), st.data())
def test_bytes_out_are_upper_bytes_in_under_any_chunking_and_any_send_sizes(received, takes, data):
    """Feed chunks and send in any interleaving, honouring wants_read as a loop does; every
    send size from 0 to what is pending. What comes out is the upper-cased input, in order,
    and the marks are never broken."""
    high = data.draw(st.integers(min_value=0, max_value=200), label="high")
    low = data.draw(st.integers(min_value=0, max_value=high), label="low")
    protocol = EchoProtocol(high, low)
    sent_out = bytearray()
    to_receive = list(received)
    takes = list(takes)
    while to_receive or protocol.pending:
        read_now = protocol.wants_read and to_receive and data.draw(st.booleans(), label="read")
        if read_now or not protocol.pending:
            if not protocol.wants_read:  # a loop would not read now: only sending is left
                break
            before = protocol.paused
            flow = protocol.receive_data(to_receive.pop(0))
            assert flow is (PAUSED if protocol.paused and not before else UNCHANGED)
            assert protocol.paused == (before or protocol.pending > high)
            continue
        take = min(takes.pop(0) if takes else protocol.pending, protocol.pending)
        sent_out += protocol.data_to_send()[:take]
        was_paused = protocol.paused
        flow = protocol.data_sent(take)
        if was_paused and protocol.pending <= low:
            assert flow is RESUMED and not protocol.paused
        else:
            assert flow is UNCHANGED and protocol.paused == was_paused
    if to_receive:  # paused with nothing pending cannot happen: the loop above drained it
        pytest.fail("stopped reading with nothing left to send")
    protocol.receive_data(b"")
    assert protocol.finished
    assert bytes(sent_out) == b"".join(received).upper()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=500), st.lists(st.integers(min_value=1, max_value=50), min_size=1))
def test_any_split_of_the_input_gives_the_same_output(stream, sizes):
    protocol = EchoProtocol(high_water=2**40)
    at, i = 0, 0
    while at < len(stream):
        size = sizes[i % len(sizes)]
        protocol.receive_data(stream[at : at + size])
        at, i = at + size, i + 1
    assert bytes(protocol.data_to_send()) == stream.upper()


# ------------------------------------------------------------------- the framer
def test_the_line_framer_is_defined_once():
    assert LineFramer is FramingLineFramer


# ------------------------------------------- the shim: a Connection on a fake socket
class FakeSocket:
    """``recv()`` returns each of ``incoming`` in turn; ``send()`` takes ``takes`` bytes in
    turn (BlockingIOError for 0); records what was sent and every other call."""

    def __init__(self, incoming, takes):
        self.incoming, self.takes = list(incoming), list(takes)
        self.sent = bytearray()
        self.calls = []

    def setblocking(self, flag):
        self.calls.append(("setblocking", flag))

    def fileno(self):
        return 42

    def recv(self, n):
        if not self.incoming:
            raise BlockingIOError
        item = self.incoming.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    def send(self, data):
        take = self.takes.pop(0) if self.takes else len(data)
        if take == 0:
            raise BlockingIOError
        self.sent += bytes(data[:take])
        return min(take, len(data))

    def shutdown(self, how):
        self.calls.append(("shutdown", how))


def fake_connection(incoming, takes, **marks):
    sock, events, closed = FakeSocket(incoming, takes), EventLog(), []
    conn = Connection(
        sock,
        EchoProtocol(**marks),
        events,
        track=lambda s, owner: 7,
        close=lambda s, cid, reason: closed.append((cid, reason)),
        recv_size=100,
    )
    return conn, sock, events, closed


def test_the_connection_needs_no_server_and_logs_what_the_protocol_says():
    conn, sock, events, closed = fake_connection(
        [b"abcdef", b"gh", b""], [3, 0, 2, 100], high_water=6, low_water=2
    )
    assert conn.id == 7 and sock.calls == [("setblocking", False)]
    conn.on_readable()  # 6 pending: at the mark
    assert conn.wants_read
    conn.on_readable()  # 8 > 6: PAUSE
    assert not conn.wants_read and conn.wants_write
    conn.on_writable()  # takes 3: 5 left, still paused
    conn.on_writable()  # would block
    conn.on_writable()  # takes 2: 3 left, still above 2
    assert not conn.wants_read
    conn.on_writable()  # takes the rest: RESUME
    assert conn.wants_read and not conn.wants_write
    conn.on_readable()  # EOF, nothing pending: our EOF, done
    assert conn.done and not conn.wants_read
    assert ("shutdown", socket.SHUT_WR) in sock.calls
    assert sock.sent == b"ABCDEFGH"
    kinds = [(e.kind, e.nbytes) for e in events.events()]
    assert kinds == [
        (RECV, 6),
        (RECV, 2),
        (PAUSE, 8),
        (SEND, 3),
        (SEND_WOULD_BLOCK, 0),
        (SEND, 2),
        (SEND, 3),
        (RESUME, 0),
        (EOF, 0),
    ]
    conn.close()
    conn.close()
    assert closed == [(7, "peer closed and every byte was sent")]


def test_a_reset_makes_the_connection_done_without_raising():
    conn, _, _, closed = fake_connection([ConnectionResetError()], [])
    conn.on_readable()
    assert conn.done and conn.why_done == "recv failed: ConnectionResetError"
    conn.close("custom")
    assert closed == [(7, "custom")]


# ------------------------------------------- every model applies the same water marks
def test_an_accepted_connection_takes_the_servers_marks_and_settings():
    ours, peer = socket.socketpair()
    with ours, peer:
        server = types.SimpleNamespace(
            high_water=1000,
            low_water=100,
            recv_size=10,
            events=EventLog(),
            track=lambda sock, owner: 3,
            close_connection=lambda sock, cid, reason: None,
        )
        conn = echo_connection(ours, server)
        assert conn.protocol.marks == WaterMarks(1000, 100)
        assert (conn.recv_size, conn.id, conn.events) == (10, 3, server.events)
        assert ours.gettimeout() == 0.0  # made non-blocking


def test_the_asyncio_model_gives_its_transports_the_servers_marks():
    seen = []

    class Spy(AsyncioServer):
        async def close_stream(self, reader, writer, cid, reason):
            seen.append(writer.transport.get_write_buffer_limits())  # (low, high)
            await super().close_stream(reader, writer, cid, reason)

    with Spy(name="asyncio-marks", high_water=1000, low_water=100) as server:
        assert request(server.address, b"hi") == b"HI"
        assert wait_until(lambda: seen, timeout=5)
    with Spy(name="asyncio-default-marks", high_water=4000) as server:
        assert request(server.address, b"hi") == b"HI"
        assert wait_until(lambda: len(seen) == 2, timeout=5)
    assert seen == [(100, 1000), (1000, 4000)]


class FakeLoop:
    def __init__(self):
        self.writers = {}

    def add_writer(self, sock, callback):
        self.writers[sock] = callback

    def remove_writer(self, sock):
        self.writers.pop(sock, None)


def test_the_loop_transport_calls_back_at_the_servers_low_mark():
    """Notebook 06's transport (the tasks model's drain()) resumes at ``low_water`` too."""
    sock = FakeSocket([], [10, 5, 5, 1, 100])
    server = types.SimpleNamespace(high_water=20, low_water=8, events=EventLog())
    loop = FakeLoop()
    transport = Transport(loop, sock, server, 1)
    transport.write(b"x" * 30)  # send() takes 10: 20 pending, a writer registered
    assert transport.pending == 20 and sock in loop.writers
    resumed = []
    transport.on_low_water = lambda: resumed.append(transport.pending)
    for expected_pending in (15, 10, 9):  # above the low mark: no call back yet
        transport.flush()
        assert transport.pending == expected_pending and resumed == []
    transport.flush()  # takes the rest: 0 <= 8
    assert resumed == [0] and transport.on_low_water is None
    assert sock not in loop.writers  # drained: the writer removed itself
