"""The chat protocol of notebook 06: lines of text, a name first, then talk.

Every step's server speaks exactly this; only *how* it waits differs (callbacks, generator
tasks, timers, coroutines, asyncio). The rules, from the client's side:

1. The server greets: ``* welcome to nbio chat! what is your name?``
2. The first line is the name: 1 to 16 letters, digits, ``-`` or ``_`` (any alphabet),
   unique in the room ignoring case. Otherwise a ``! ...`` line says why, and asks again.
3. Then the server says ``* hello NAME! ...`` to the client and ``* NAME joined`` to the others.
4. Each line after that goes to every *other* client as ``NAME: text``. Empty lines are
   ignored. ``/who`` is answered with ``* here: a, b, c``; ``/quit`` with ``* bye, NAME!``
   and the connection is closed. Any other ``/word`` is answered ``! unknown command``.
5. When a client leaves (``/quit``, end of stream, reset, error) the others get
   ``* NAME left``.
6. Errors close the connection after one ``! ...`` line: a line longer than ``max_line``
   bytes (see :mod:`nbio_helpers.framing`), or (servers with an idle timeout) no line for
   ``idle_timeout`` seconds.

Lines end with ``\\n`` (``\\r\\n`` accepted). Bytes are decoded as UTF-8, invalid bytes and
control characters shown as U+FFFD, so one client cannot garble the others' terminals. A
client that does not read its replies is not waited for: once more than ``high_water`` bytes
wait to be sent to it, further lines to it are dropped (memory stays bounded).
"""

from __future__ import annotations

import collections
import re
from typing import Any

from nbio_helpers.framing import LineFramer, LineTooLong
from nbio_helpers.loop.transport import Transport

ASK_NAME = "* welcome to nbio chat! what is your name?"
BAD_NAME = "! a name is 1 to 16 letters, digits, '-' or '_': what is your name?"
NAME_TAKEN = "! {name} is taken: what is your name?"
HELLO = "* hello {name}! {others} (/who lists who is here, /quit leaves)"
ALONE = "nobody else is here yet."
OTHERS = "here too: {names}."
JOINED = "* {name} joined"
LEFT = "* {name} left"
WHO = "* here: {names}"
BYE = "* bye, {name}!"
UNKNOWN = "! unknown command {command}: try /who or /quit"
TOO_LONG = "! line too long (the limit is {limit} bytes): bye"
IDLE = "! nothing from you for {seconds:g} s: bye"
MESSAGE = "{name}: {text}"

NAME = re.compile(r"[\w-]{1,16}")
# The control characters (Unicode category Cc: C0, DEL, C1), tab excepted -> U+FFFD.
_CONTROL = {c: "\ufffd" for c in (*range(0x20), *range(0x7F, 0xA0)) if c != 0x09}


def decode(line: bytes) -> str:
    """A received line as text: UTF-8, bad bytes and control characters (tabs kept) as �."""
    return line.decode("utf-8", "replace").translate(_CONTROL)


class Room:
    """Who is in the chat, and what to tell whom. No socket: clients only need ``say(text)``
    and a ``name`` attribute (None until they have joined)."""

    def __init__(self):
        self.members: dict[str, Any] = {}  # name.casefold() -> client

    def names(self) -> list[str]:
        return sorted((c.name for c in self.members.values()), key=str.casefold)

    def welcome(self, client) -> None:
        client.say(ASK_NAME)

    def name_problem(self, name: str) -> str | None:
        """Why ``name`` cannot be used (the line to send back), or None if it can."""
        _require_text(name, "name_problem")
        if not NAME.fullmatch(name):
            return BAD_NAME
        if name.casefold() in self.members:
            return NAME_TAKEN.format(name=name)
        return None

    def join(self, client, name: str) -> None:
        _require_text(name, "join")
        others = self.names()
        client.name = name
        self.members[name.casefold()] = client
        client.say(
            HELLO.format(
                name=name, others=OTHERS.format(names=", ".join(others)) if others else ALONE
            )
        )
        self.tell_others(client, JOINED.format(name=name))

    def hear(self, client, text: str) -> bool:
        """A line from a member: broadcast it or answer it. False if the client asked to leave."""
        _require_text(text, "hear")
        command = text.strip()
        if command == "/quit":
            client.say(BYE.format(name=client.name))
            return False
        if command == "/who":
            client.say(WHO.format(names=", ".join(self.names())))
        elif command.startswith("/") and " " not in command:
            client.say(UNKNOWN.format(command=command))
        elif command:
            self.tell_others(client, MESSAGE.format(name=client.name, text=text))
        return True

    def leave(self, client) -> None:
        """``client`` is gone (for whatever reason): tell the others. Safe to call twice."""
        name = client.name
        if name is not None and self.members.get(name.casefold()) is client:
            del self.members[name.casefold()]
            self.tell_others(client, LEFT.format(name=name))

    def tell_others(self, sender, text: str) -> None:
        for member in list(self.members.values()):
            if member is not sender:
                member.say(text)


class LineClient:
    """One chat connection's plumbing on our loops: socket, :class:`Transport`, line framer.

    Each step adds how it *waits* for lines (a callback, ``yield``, ``await``). Received
    bytes go through :meth:`received`; :meth:`next_line` hands out the decoded lines (None at
    the end of the stream; it raises :class:`~nbio_helpers.framing.LineTooLong` in turn).
    """

    def __init__(self, server, loop, sock, conn: int):
        self.server, self.loop, self.sock, self.id = server, loop, sock, conn
        self.transport = Transport(loop, sock, server, conn)
        self.framer = LineFramer(server.max_line)
        # Decoded lines, then None (end) or a LineTooLong.
        self.lines: collections.deque[str | LineTooLong | None] = collections.deque()
        self.name: str | None = None
        self.dropped = 0  # lines not sent: the client does not read

    def say(self, text: str) -> None:
        """Send one line of text (never blocks; dropped if too much is pending already)."""
        if self.transport.pending > self.server.high_water:
            self.dropped += 1
            return
        self.transport.write(text.encode() + b"\n")

    def recv(self) -> bytes | None:
        """One ``recv()``: the bytes (``b''`` at the end or on a reset), None if none yet."""
        try:
            return self.sock.recv(4096)
        except BlockingIOError:  # readiness is a hint
            return None
        except OSError:  # reset by the peer: the end, for us
            return b""

    def received(self, data: bytes) -> None:
        """Frame ``data`` (``b''`` = end of stream) into :attr:`lines`."""
        try:
            lines = self.framer.feed(data) if data else self.framer.end()
        except LineTooLong as exc:
            self.lines.extend(map(decode, exc.lines))
            self.lines.append(exc)
            return
        self.lines.extend(map(decode, lines))
        if not data:
            self.lines.append(None)

    def next_line(self) -> str | None:
        item = self.lines.popleft()
        if isinstance(item, LineTooLong):
            raise item
        return item

    def close(self, reason: str = "closed by the server") -> None:
        """Stop reading; close once the pending output is sent. Safe to call twice."""
        self.loop.remove_reader(self.sock)
        self.transport.close(reason)


def error_line(exc: BaseException, server) -> str:
    """The ``! ...`` line sent before closing a connection for ``exc``."""
    if isinstance(exc, LineTooLong):
        return TOO_LONG.format(limit=exc.max_line)
    return IDLE.format(seconds=server.idle_timeout)


def _require_text(value, method: str) -> None:
    """A line is a ``str``: say what was passed instead, in the same words on every Python
    (``None``: the client has gone; a coroutine: an ``await`` is missing)."""
    if not isinstance(value, str):
        raise TypeError(f"Room.{method}() takes a line of text (str), not {type(value).__name__}")


__all__ = [
    "ALONE",
    "ASK_NAME",
    "BAD_NAME",
    "BYE",
    "HELLO",
    "IDLE",
    "JOINED",
    "LEFT",
    "MESSAGE",
    "NAME",
    "NAME_TAKEN",
    "OTHERS",
    "TOO_LONG",
    "UNKNOWN",
    "WHO",
    "LineClient",
    "Room",
    "decode",
    "error_line",
]
