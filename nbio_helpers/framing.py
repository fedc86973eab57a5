"""Line framing without a socket: TCP delivers bytes, a line protocol needs whole lines.

``recv()`` returns whatever bytes have arrived: half a line, three lines and a half, one byte.
:class:`LineFramer` turns those pieces back into lines, whatever the split::

    framer = LineFramer(max_line=1024)
    framer.feed(b"hel")            # []               (kept: the partial line)
    framer.feed(b"lo\\nwor")        # [b'hello']
    framer.feed(b"ld\\r\\n\\n")       # [b'world', b'']  (one \\r before the \\n is removed)
    framer.end()                   # []               (end of stream: nothing was pending)

The rules, decided once for every server of the series:

* a line ends with ``\\n``; a ``\\r`` right before it is removed too (``telnet`` and Windows
  clients send ``\\r\\n``); a ``\\r`` anywhere else is data;
* lines are **bytes**: the framer never decodes. ``\\n`` (0x0A) cannot occur inside a UTF-8
  multi-byte character, so splitting bytes is safe, and a limit in bytes bounds memory. The
  protocol layer above decodes each whole line (the chat: UTF-8, bad bytes replaced by U+FFFD);
* ``max_line`` is the longest line accepted, in bytes, not counting its line ending. A longer
  line raises :class:`LineTooLong` as soon as it is known to be too long (without waiting for
  its ``\\n``), so a client that never sends ``\\n`` cannot make the buffer grow: it never holds
  more than ``max_line + 1`` bytes between calls, however the line arrives;
* an empty line is a line (``b""``); what to do with it is the protocol's business.

No socket, no clock: the same input gives the same output, so it is tested by feeding it every
split of a stream (``tests/test_framing.py``).

This is part of the package's sans-IO core, with the echo protocol of
:mod:`nbio_helpers.protocol` (which re-exports it). It is defined here, once, because it is
itself a lesson: notebook 06 teaches line framing from it (section 1), and its exercise 1 has
learners write ``feed()`` and then shows this one.
"""

from __future__ import annotations

MAX_LINE = 1024
"""Default longest line, in bytes (line ending not counted)."""


class LineTooLong(ValueError):
    """A line longer than the framer's ``max_line``. The connection cannot be re-synchronised:
    reply with an error and close it.

    ``lines`` holds the complete lines that came before the over-long one in the same
    :meth:`LineFramer.feed` call, so that nothing valid is lost.
    """

    def __init__(self, max_line: int, lines: list[bytes] | None = None):
        super().__init__(f"line too long: the limit is {max_line} bytes")
        self.max_line = max_line
        self.lines = lines or []


class LineFramer:
    """Splits a byte stream into lines, keeping the partial last line for the next call.

    Parameters
    ----------
    max_line:
        The longest line accepted, in bytes, not counting ``\\n`` or ``\\r\\n``.
    """

    def __init__(self, max_line: int = MAX_LINE):
        if max_line < 1:
            raise ValueError(f"max_line must be at least 1, not {max_line}")
        self.max_line = max_line
        self.buffer = bytearray()  # the partial line: bytes after the last b"\n"

    def feed(self, data: bytes) -> list[bytes]:
        """Add the bytes just received; return the lines they complete (without endings).

        Raises :class:`LineTooLong` if a line is longer than ``max_line``.
        """
        self.buffer += data
        *lines, rest = self.buffer.split(b"\n")
        self.buffer = bytearray(rest)
        complete: list[bytes] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > self.max_line:
                raise LineTooLong(self.max_line, complete)
            complete.append(bytes(line))
        # The partial line may still lose a final b"\r": too long only beyond that.
        if len(rest) > self.max_line and not (
            len(rest) == self.max_line + 1 and rest.endswith(b"\r")
        ):
            raise LineTooLong(self.max_line, complete)
        return complete

    @property
    def pending(self) -> int:
        """How many bytes of a partial line are kept."""
        return len(self.buffer)

    def end(self) -> list[bytes]:
        """The stream ended: the unterminated last line, if any, as ``[line]`` (else ``[]``).

        Like ``asyncio.StreamReader.readline()`` and file ``readline()``, a last line without
        its ``\\n`` still counts. A lone trailing ``\\r`` is removed as for ``\\r\\n``.
        """
        rest, self.buffer = bytes(self.buffer), bytearray()
        if rest.endswith(b"\r"):
            rest = rest[:-1]
        return [rest] if rest else []


__all__ = [
    "MAX_LINE",
    "LineFramer",
    "LineTooLong",
]
