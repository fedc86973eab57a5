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
reply in time, a server that was stopped) are shown in the widget as a sentence, never as a
traceback.

Re-running the cell replaces the console, as re-running a cell that starts a server replaces
the server: a console is registered under the name of the server it talks to (the server
object given, or the running server at the address given), and a new console for the same
server disconnects and disables the old one. Otherwise the old console would keep its
connection, and a one-client-at-a-time server would serve nobody else. For two consoles on
one server, name them: ``ClientConsole(server, name="A")``, ``ClientConsole(server, name="B")``.
:func:`disconnect_all` (called by ``finish()``) closes every console's connection.
"""

from __future__ import annotations

import html
import socket

import ipywidgets as widgets

from nbio_helpers import registry
from nbio_helpers.clients import connect, recv_exactly
from nbio_helpers.server import Server, ServerStoppedError

REPLACED = "this console was replaced by a newer one for the same server: use that one"


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
    name:
        Registry key: a new console with the same key replaces this one. Default: the name
        of the server it talks to (or ``HOST:PORT`` if no running server has that address).

    Attributes
    ----------
    text, send_button, reply:
        The Text, the Button and the HTML reply area (DOM classes ``nbio-client-text``,
        ``nbio-client-send``, ``nbio-client-reply``; the box is ``nbio-client-console``).
    history:
        The lines shown in the reply area, as plain text.
    key:
        The registry key (see ``name``).
    """

    def __init__(
        self, address, *, timeout: float = 2.0, max_lines: int = 20, name: str | None = None
    ):
        self.target = address
        self.timeout = timeout
        self.max_lines = max_lines
        self.history: list[str] = []
        self.is_replaced = False
        self._sock: socket.socket | None = None
        self._last_address: tuple = ("?", "?")
        self.text = widgets.Text(
            placeholder="type a message, then Enter or Send", layout=widgets.Layout(width="60%")
        )
        self.send_button = widgets.Button(
            description="Send", button_style="primary", icon="paper-plane"
        )
        self.reply = widgets.HTML(value=self._render([]))
        super().__init__([widgets.HBox([self.text, self.send_button]), self.reply])
        self.add_class("nbio-client-console")
        self.text.add_class("nbio-client-text")
        self.send_button.add_class("nbio-client-send")
        self.reply.add_class("nbio-client-reply")
        self.send_button.on_click(lambda _button: self.submit())
        # Enter: the front end sends a "submit" message (Text.on_submit is deprecated in
        # ipywidgets 8; this is the message it listened to).
        self.text.on_msg(self._on_text_msg)
        self.key = console_key(address, name)
        registry.register_client(self.key, self)

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
        except (OSError, RuntimeError):  # a stopped server: its last address
            pass
        return self._last_address

    @property
    def connection(self) -> socket.socket | None:
        """The socket to the server, kept from one send to the next (None before the first
        send, and after :meth:`disconnect`)."""
        return self._sock

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
        if self.is_replaced:
            line = f"{message} -> not sent: {REPLACED}"
            self._show(line)
            return line
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

    def replaced(self) -> None:
        """A newer console took this one's place: disconnect, and send nothing any more
        (called by the registry; the text box and the button are disabled)."""
        self.is_replaced = True
        self.disconnect()
        self.text.disabled = self.send_button.disabled = True
        self._show(f"({REPLACED})")

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
            return self._exchange(data)  # the old connection was dropped: one fresh try
        except BaseException:
            self.disconnect()  # e.g. a timeout: a late reply must not be read later
            raise

    def _exchange(self, data: bytes) -> str:
        if getattr(self.target, "stopped", False):
            _ = self.target.address  # raises ServerStoppedError, which says why
        if getattr(self.target, "running", True) is False:
            raise ConnectionRefusedError("the server is not running")
        if self._sock is None:
            self._sock = connect(self.address, timeout=self.timeout)
        self._sock.sendall(data)
        reply = recv_exactly(self._sock, len(data), timeout=self.timeout)
        return reply.decode("utf-8", errors="replace")

    def _explain(self, exc: BaseException) -> str:
        host, port = self.address[:2]
        if isinstance(exc, ServerStoppedError):
            return str(exc)
        if isinstance(exc, ConnectionRefusedError):
            return f"no server at {host}:{port} — is it running?"
        if isinstance(exc, TimeoutError):
            return (
                f"no reply within {self.timeout:g} s — the server may be busy with "
                "another client (a blocking server serves one at a time)"
            )
        if isinstance(exc, ConnectionError):
            return f"the server at {host}:{port} closed the connection — is it still running?"
        return f"error: {type(exc).__name__}: {exc}"

    def _show(self, line: str) -> None:
        self.history = (self.history + [line])[-self.max_lines :]
        self.reply.value = self._render(self.history)

    @staticmethod
    def _render(lines: list[str]) -> str:
        body = "\n".join(html.escape(line) for line in lines) or "(replies appear here)"
        return f"<pre style='margin:0.3em 0'>{body}</pre>"


def console_key(target, name: str | None = None) -> str:
    """The registry key of a console talking to ``target`` (see :class:`ClientConsole`)."""
    if name:
        return f"console {name}"
    if not isinstance(target, (tuple, list)):
        return f"server {getattr(target, 'name', id(target))}"
    address = tuple(target[:2])
    for server_name, server in registry.running_servers().items():
        if not isinstance(server, Server):
            continue  # the registry holds servers only
        try:
            if tuple(server.address) == address:
                return f"server {server_name}"
        except RuntimeError:  # stopping meanwhile
            continue
    return f"address {address[0]}:{address[1]}"


def disconnect_all() -> int:
    """Close the connection of every client console (``finish()`` does this); each opens a
    new one if used again. Returns how many consoles there are."""
    return registry.disconnect_clients()


__all__ = ["ClientConsole", "console_key", "disconnect_all"]
