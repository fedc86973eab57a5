"""Widgets: a client console that replaces ``input()`` in a notebook.

Usage (the cell is tagged ``nbval-ignore-output``)::

    console = ClientConsole(server.address)     # or ClientConsole(server)
    console

Type a message and press Enter or click Send: the reply of the server appears below, as a
history of ``sent -> reply`` lines. From code (tests, or a cell driving the widget)::

    console.text.value = "hello"
    console.send_button.click()
    console.history[-1]                         # 'hello -> HELLO'
    console.submit("again")                     # same, without the text box

A callback never blocks for long: each request has a ``timeout`` (2 s by default); one
connection is reused, and opened again if the server dropped it. Errors (no server, no
reply in time) are shown in the widget as a sentence, never as a traceback.
"""
from __future__ import annotations

import html
import socket
import weakref

import ipywidgets as widgets

from .clients import connect, recv_exactly

_consoles: "weakref.WeakSet[ClientConsole]" = weakref.WeakSet()


class ClientConsole(widgets.VBox):
    """Text box + Send button + reply area, talking to an echo server.

    Parameters
    ----------
    address:
        ``(host, port)``, or an object with an ``.address`` (a server), read at each connect.
    timeout:
        Seconds one request may take (connect, send and reply), so a callback never hangs.
    max_lines:
        How many lines of history the reply area keeps.

    Attributes
    ----------
    text, send_button, reply:
        The Text, the Button and the HTML reply area (DOM classes ``nbio-client-text``,
        ``nbio-client-send``, ``nbio-client-reply``; the box is ``nbio-client-console``).
    history:
        The lines shown in the reply area, as plain text.
    """

    def __init__(self, address, *, timeout: float = 2.0, max_lines: int = 20):
        self.text = widgets.Text(placeholder="type a message, then Enter or Send",
                                 layout=widgets.Layout(width="60%"))
        self.send_button = widgets.Button(description="Send", button_style="primary",
                                          icon="paper-plane")
        self.reply = widgets.HTML(value=self._render([]))
        super().__init__([widgets.HBox([self.text, self.send_button]), self.reply])
        self.add_class("nbio-client-console")
        self.text.add_class("nbio-client-text")
        self.send_button.add_class("nbio-client-send")
        self.reply.add_class("nbio-client-reply")
        self.target = address
        self.timeout = timeout
        self.max_lines = max_lines
        self.history: list[str] = []
        self._sock: socket.socket | None = None
        self._last_address: tuple = ("?", "?")
        self.send_button.on_click(lambda _button: self.submit())
        # Enter: the front end sends a "submit" message (Text.on_submit is deprecated in
        # ipywidgets 8; this is the message it listened to).
        self.text.on_msg(self._on_text_msg)
        _consoles.add(self)

    # ------------------------------------------------------------------ actions
    @property
    def address(self) -> tuple:
        """Where requests go: the target's current address (the last known one if the
        target server is stopped)."""
        target = self.target
        if isinstance(target, (tuple, list)):
            return tuple(target)
        try:
            self._last_address = tuple(target.address)
        except (OSError, RuntimeError):  # a stopped server's listener is closed
            pass
        return self._last_address

    def submit(self, message: str | None = None) -> str:
        """Send ``message`` (default: the text box's value, which is then cleared).

        Returns the line added to the history (``"hello -> HELLO"`` or an error sentence).
        Never raises for network trouble. (Named ``submit``, not ``send``: ``Widget.send``
        is ipywidgets' own message channel.)
        """
        if message is None:
            message = self.text.value
            self.text.value = ""
        if not message:
            return ""
        try:
            line = f"{message} -> {self._request(message)}"
        except Exception as exc:  # shown in the widget: a callback must never raise
            line = f"{message} -> {self._explain(exc)}"
        self._show(line)
        return line

    def disconnect(self) -> None:
        """Close the connection (a new one is opened by the next send)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def clear(self) -> None:
        """Empty the history."""
        self.history = []
        self.reply.value = self._render([])

    # ------------------------------------------------------------------ internals
    def _on_text_msg(self, _widget, content, _buffers) -> None:
        if content.get("event") == "submit":
            self.submit()

    def _request(self, message: str) -> str:
        data = message.encode("utf-8")
        reused = self._sock is not None
        try:
            return self._exchange(data)
        except (ConnectionError, BrokenPipeError) as exc:
            self.disconnect()
            if not reused or isinstance(exc, ConnectionRefusedError):
                raise
            return self._exchange(data)   # the old connection was dropped: one fresh try
        except BaseException:
            self.disconnect()             # e.g. a timeout: a late reply must not be read later
            raise

    def _exchange(self, data: bytes) -> str:
        if getattr(self.target, "running", True) is False:
            raise ConnectionRefusedError("the server is not running")
        if self._sock is None:
            self._sock = connect(self.address, timeout=self.timeout)
        self._sock.sendall(data)
        reply = recv_exactly(self._sock, len(data), timeout=self.timeout)
        return reply.decode("utf-8", errors="replace")

    def _explain(self, exc: BaseException) -> str:
        host, port = self.address[:2]
        if isinstance(exc, ConnectionRefusedError):
            return f"no server at {host}:{port} — is it running?"
        if isinstance(exc, TimeoutError):
            return (f"no reply within {self.timeout:g} s — the server may be busy with "
                    "another client (a blocking server serves one at a time)")
        if isinstance(exc, ConnectionError):
            return f"the server at {host}:{port} closed the connection — is it still running?"
        return f"error: {type(exc).__name__}: {exc}"

    def _show(self, line: str) -> None:
        self.history = (self.history + [line])[-self.max_lines:]
        self.reply.value = self._render(self.history)

    @staticmethod
    def _render(lines: list[str]) -> str:
        body = "\n".join(html.escape(line) for line in lines) or "(replies appear here)"
        return f"<pre style='margin:0.3em 0'>{body}</pre>"


def disconnect_all() -> None:
    """Close the connection of every client console (``finish()`` calls this)."""
    for console in list(_consoles):
        console.disconnect()


__all__ = ["ClientConsole", "disconnect_all"]
