"""Protocol state without a socket (sans-IO, in the style of h11): the echo and its water marks.

A server model owns the sockets and decides *when* to read and write; what the bytes mean,
what to send back and when to stop reading lives here, in objects that never touch a socket,
a clock or a thread. So every rule is tested by feeding bytes in and saying how many a
``send()`` took (``tests/test_protocol.py``), and every model applies the same rules.

:class:`EchoProtocol` is one echo connection: the bytes received go in, the reply (the same
bytes, upper-cased) is buffered until it is sent, and the buffer's size decides whether the
connection should read on (backpressure). A socket shim drives it::

    protocol = EchoProtocol(high_water=8, low_water=2)
    protocol.receive_data(b"hello")     # Flow.UNCHANGED: 5 bytes pending, not above 8
    protocol.receive_data(b" world")    # Flow.PAUSED: 11 bytes pending > 8: stop reading
    protocol.wants_read                 # False
    bytes(protocol.data_to_send())      # b'HELLO WORLD' (give it to send())
    protocol.data_sent(4)               # Flow.UNCHANGED: send() took 4, 7 left (above 2)
    protocol.data_sent(5)               # Flow.RESUMED: 2 left, at the low-water mark
    protocol.receive_data(b"")          # the peer's EOF: read no more
    protocol.data_sent(2)               # Flow.UNCHANGED, and now protocol.finished is True

:class:`WaterMarks` are the two limits, validated, with the defaults of asyncio's transports
(``asyncio.transports._FlowControlMixin``): reading pauses when more than ``high`` bytes are
pending and resumes once they have drained to ``low`` or fewer. The gap between the two
(hysteresis) keeps a connection near the mark from pausing and resuming on every send.

The line framer of notebook 06 is sans-IO state too. It stays in :mod:`nbio_helpers.framing`,
the module notebook 06 teaches it from (its section 1, and exercise 1 where learners write
``feed()`` and are shown the package's own): it is re-exported here so that this module
lists the whole sans-IO core, and it is defined once, there.
"""

from __future__ import annotations

import enum

from nbio_helpers.framing import MAX_LINE, LineFramer, LineTooLong

__all__ = [
    "DEFAULT_HIGH_WATER",
    "MAX_LINE",
    "PAUSED",
    "RESUMED",
    "UNCHANGED",
    "EchoProtocol",
    "Flow",
    "LineFramer",
    "LineTooLong",
    "WaterMarks",
    "echo_upper",
]

DEFAULT_HIGH_WATER = 64 * 1024
"""The high-water mark when neither mark is given (asyncio's default too)."""


def echo_upper(data: bytes) -> bytes:
    """The protocol of every model: the same bytes, ASCII letters upper-cased."""
    return data.upper()


class Flow(enum.Enum):
    """What a call did to reading: the caller logs it (``PAUSE`` / ``RESUME`` events)."""

    UNCHANGED = "unchanged"
    """Reading goes on as it was (paused or not)."""
    PAUSED = "paused"
    """The output just went above the high-water mark: stop reading."""
    RESUMED = "resumed"
    """The output just drained to the low-water mark or below: read again."""


UNCHANGED, PAUSED, RESUMED = Flow.UNCHANGED, Flow.PAUSED, Flow.RESUMED

_VIEW_HELD = "a view returned by data_to_send() is still held: release it first"


def _check_mark(name: str, value: object) -> int:
    # bool is an int subclass, but high_water=True is a mistake, not a mark of 1 byte.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (bytes) or None, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0 bytes, not {value}")
    return value


class WaterMarks:
    """The backpressure limits of one output buffer, in bytes, validated.

    Parameters
    ----------
    high:
        Stop reading once more than this many bytes are pending. None: ``4 * low`` if
        ``low`` is given, else :data:`DEFAULT_HIGH_WATER` (64 KiB).
    low:
        Read again once the pending bytes have drained to this many or fewer. None:
        ``high // 4``.

    These are the rules of ``asyncio``'s ``WriteTransport.set_write_buffer_limits()``.
    Raises ``TypeError`` for a mark that is not an ``int`` (``bool`` included) and
    ``ValueError`` for a negative mark or ``low > high``.
    """

    __slots__ = ("_high", "_low")

    def __init__(self, high: int | None = None, low: int | None = None) -> None:
        if low is not None:
            low = _check_mark("low_water", low)
        if high is not None:
            high = _check_mark("high_water", high)
        elif low is None:
            high = DEFAULT_HIGH_WATER
        else:
            high = 4 * low
        if low is None:
            low = high // 4
        if low > high:
            raise ValueError(f"low_water ({low}) must not be above high_water ({high})")
        self._high = high
        self._low = low

    @property
    def high(self) -> int:
        """Pause reading above this many pending bytes."""
        return self._high

    @property
    def low(self) -> int:
        """Resume reading at this many pending bytes or fewer."""
        return self._low

    def too_full(self, pending: int) -> bool:
        """True when ``pending`` bytes are more than the high-water mark: pause."""
        return pending > self._high

    def drained(self, pending: int) -> bool:
        """True when ``pending`` bytes are down to the low-water mark: resume."""
        return pending <= self._low

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WaterMarks):
            return NotImplemented
        return (self._high, self._low) == (other._high, other._low)

    def __hash__(self) -> int:
        return hash((self._high, self._low))

    def __repr__(self) -> str:
        return f"WaterMarks(high={self._high}, low={self._low})"


class EchoProtocol:
    """One echo connection's state: the reply waiting to be sent, and whether to read on.

    No socket: the caller reads (``recv()``) and hands the bytes to :meth:`receive_data`,
    sends what :meth:`data_to_send` returns and reports with :meth:`data_sent` how many
    bytes ``send()`` took (a *partial send* leaves the rest for later). The methods return a
    :class:`Flow` saying whether reading just paused or resumed, so the caller can log it.

    Parameters
    ----------
    high_water, low_water:
        The backpressure marks, in bytes (see :class:`WaterMarks` for the defaults and the
        checks): pause reading when more than ``high_water`` bytes are pending, resume once
        ``low_water`` or fewer are.
    """

    def __init__(self, high_water: int | None = None, low_water: int | None = None) -> None:
        self.marks = WaterMarks(high_water, low_water)
        self._output = bytearray()
        self._paused = False
        self._peer_done = False

    # ------------------------------------------------------------------ the state
    @property
    def high_water(self) -> int:
        return self.marks.high

    @property
    def low_water(self) -> int:
        return self.marks.low

    @property
    def pending(self) -> int:
        """Bytes of reply received but not sent yet."""
        return len(self._output)

    @property
    def paused(self) -> bool:
        """True while backpressure is in force: more than ``high_water`` bytes were
        pending, and they have not yet drained to ``low_water``."""
        return self._paused

    @property
    def peer_done(self) -> bool:
        """True once the peer's end of stream was received (``receive_data(b"")``)."""
        return self._peer_done

    @property
    def wants_read(self) -> bool:
        """Should the caller read? Not after the peer's EOF, nor while paused."""
        return not self._peer_done and not self._paused

    @property
    def wants_write(self) -> bool:
        """Should the caller send? Only while some reply is pending."""
        return bool(self._output)

    @property
    def finished(self) -> bool:
        """True when the peer is done and every byte of the reply was sent: send our EOF
        and close."""
        return self._peer_done and not self._output

    # ---------------------------------------------------------------- the events
    def receive_data(self, data: bytes) -> Flow:
        """The bytes one ``recv()`` returned; ``b""`` is the peer's end of stream.

        Queues the reply. Returns :data:`PAUSED` if the pending output has just gone
        above the high-water mark, else :data:`UNCHANGED`. Data after the end of stream
        raises ``RuntimeError`` (a second ``b""`` is ignored).
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"receive_data() takes bytes, not {type(data).__name__}")
        if not data:
            self._peer_done = True
            return UNCHANGED
        if self._peer_done:
            raise RuntimeError("receive_data() got data after the end of stream (b'')")
        try:
            self._output += echo_upper(bytes(data))
        except BufferError:
            raise RuntimeError(_VIEW_HELD) from None
        if not self._paused and self.marks.too_full(len(self._output)):
            self._paused = True
            return PAUSED
        return UNCHANGED

    def data_to_send(self) -> memoryview:
        """The pending reply, as a read-only view: pass it to ``send()`` at once, then call
        :meth:`data_sent`. (Do not keep the view: while it exists the buffer cannot change,
        and the next call raises ``RuntimeError``.)"""
        return memoryview(self._output).toreadonly()

    def data_sent(self, nbytes: int) -> Flow:
        """``send()`` took the first ``nbytes`` bytes of :meth:`data_to_send`.

        Returns :data:`RESUMED` if the pending output has just drained to the low-water
        mark or below while paused, else :data:`UNCHANGED`. ``nbytes`` must be an ``int``
        from 0 to :attr:`pending` (``TypeError`` / ``ValueError`` otherwise).
        """
        if isinstance(nbytes, bool) or not isinstance(nbytes, int):
            raise TypeError(f"data_sent() takes an int, not {type(nbytes).__name__}")
        if not 0 <= nbytes <= len(self._output):
            raise ValueError(f"data_sent({nbytes}): only {len(self._output)} bytes were pending")
        try:
            del self._output[:nbytes]
        except BufferError:
            raise RuntimeError(_VIEW_HELD) from None
        if self._paused and self.marks.drained(len(self._output)):
            self._paused = False
            return RESUMED
        return UNCHANGED

    def __repr__(self) -> str:
        state = "finished" if self.finished else "paused" if self._paused else "reading"
        if self._peer_done and not self.finished:
            state = "peer done"
        return f"<EchoProtocol {state}, {self.pending} bytes pending, {self.marks!r}>"
