"""ClientConsole's logic in plain pytest: set the text, click, read the reply area."""

from __future__ import annotations

import html
import socket
import threading

import pytest

from nbio_helpers import connect
from nbio_helpers.events import ACCEPT
from nbio_helpers.ui.widgets import ClientConsole, disconnect_all


def press_enter(console):
    """What the front end sends when Enter is pressed in the text box."""
    console.text._handle_custom_msg({"event": "submit"}, [])


def shown(console) -> str:
    return html.unescape(console.reply.value)


@pytest.fixture
def consoles():
    made = []

    def make(*args, **kwargs):
        console = ClientConsole(*args, **kwargs)
        made.append(console)
        return console

    yield make
    for console in made:
        console.disconnect()
        console.close()  # the widgets' comms


def test_dom_classes_and_parts(consoles):
    console = consoles(("127.0.0.1", 9))
    assert "nbio-client-console" in console._dom_classes
    assert "nbio-client-text" in console.text._dom_classes
    assert "nbio-client-send" in console.send_button._dom_classes
    assert "nbio-client-reply" in console.reply._dom_classes
    assert console.send_button.description == "Send"
    assert console.text in console.children[0].children
    assert console.reply in console.children


def test_send_button_and_enter_send_the_text(make_server, consoles):
    server = make_server("select")
    console = consoles(server.address)
    console.text.value = "hello"
    console.send_button.click()
    assert console.history == ["hello -> HELLO"]
    assert console.text.value == ""  # ready for the next message
    console.text.value = "<b>again</b>"
    press_enter(console)
    assert console.history[-1] == "<b>again</b> -> <B>AGAIN</B>"
    assert "<b>again</b> -> <B>AGAIN</B>" in shown(console)
    assert "<b>again" not in console.reply.value  # escaped, not rendered as HTML
    # one connection, reused
    assert server.events.count(ACCEPT) == 1


def test_empty_text_sends_nothing(make_server, consoles):
    server = make_server("select")
    console = consoles(server)
    console.send_button.click()
    press_enter(console)
    assert console.history == []
    assert server.events.count(ACCEPT) == 0


def test_accepts_a_server_object_and_unicode(make_server, consoles):
    server = make_server("threads")
    console = consoles(server)
    assert console.submit("héllo wörld") == "héllo wörld -> HéLLO WöRLD"


def test_dead_server_is_a_sentence_not_a_traceback(consoles):
    with socket.socket() as probe:  # a port where nobody listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    console = consoles(("127.0.0.1", port))
    console.text.value = "anyone?"
    console.send_button.click()  # must not raise
    assert console.history == [f"anyone? -> no server at 127.0.0.1:{port} — is it running?"]
    assert "Traceback" not in shown(console)


def test_stopped_server_object(make_server, consoles):
    server = make_server("select", name="echo")
    console = consoles(server)
    assert console.submit("a") == "a -> A"
    server.stop()
    assert console.submit("b") == (
        "b -> server 'echo' was stopped (stop() was called); run the cell that starts it again"
    )


def test_server_replaced_under_the_console(make_server, consoles):
    old = make_server("select", name="echo")
    console = consoles(old)
    make_server("select", name="echo")  # the cell that starts it, run again
    assert console.submit("hi") == (
        "hi -> server 'echo' was stopped (a new server named "
        "'echo' replaced it); run the cell that starts it again"
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize("target", ["address", "server"])
def test_running_the_console_cell_again_replaces_the_console(make_server, consoles, target):
    """Notebook 01: the blocking server serves one client at a time; a console left behind
    by running its cell twice kept it busy, and the new console got no reply."""
    server = make_server("blocking", name="echo")
    first = consoles(server.address if target == "address" else server, timeout=1)
    assert first.submit("one") == "one -> ONE"
    second = consoles(server.address if target == "address" else server, timeout=1)
    assert second.submit("two") == "two -> TWO"
    assert first.is_replaced and first.connection is None
    assert first.text.disabled and first.send_button.disabled
    assert first.submit("three").startswith("three -> not sent: this console was replaced")
    assert second.submit("four") == "four -> FOUR"


def test_named_consoles_live_side_by_side(make_server, consoles):
    server = make_server("threads", name="echo")
    a, b = consoles(server, name="A"), consoles(server, name="B")
    assert a.submit("a") == "a -> A" and b.submit("b") == "b -> B"
    assert not a.is_replaced and not b.is_replaced
    assert (a.key, b.key) == ("console A", "console B")


@pytest.mark.timeout(20)
def test_busy_blocking_server_times_out_in_the_widget(make_server, consoles):
    server = make_server("blocking")
    with connect(server.address) as first:  # the blocking server now serves only this one
        first.sendall(b"x")
        assert first.recv(1) == b"X"
        console = consoles(server.address, timeout=0.3)
        line = console.submit("me too")
        assert line.startswith("me too -> no reply within 0.3 s")
        assert console.connection is None  # a late reply must not be read by the next send


@pytest.mark.timeout(20)
def test_reconnects_once_when_the_server_dropped_the_connection(consoles):
    """A server that answers one message per connection, then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    accepted = []
    first_closed = threading.Event()

    def serve():
        for _ in range(2):
            conn, _ = listener.accept()
            accepted.append(conn)
            with conn:
                conn.settimeout(10)
                conn.sendall(conn.recv(100).upper())
            first_closed.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        console = consoles(listener.getsockname())
        assert console.submit("one") == "one -> ONE"
        assert first_closed.wait(10)  # the server hung up on the console's connection
        assert console.submit("two") == "two -> TWO"
        thread.join(10)
        assert len(accepted) == 2
    finally:
        listener.close()


def test_history_is_bounded(make_server, consoles):
    console = consoles(make_server("select"), max_lines=3)
    for word in "abcde":
        console.submit(word)
    assert console.history == ["c -> C", "d -> D", "e -> E"]
    console.clear()
    assert console.history == [] and "replies appear here" in console.reply.value


def test_disconnect_all_closes_every_connection(make_server, consoles):
    server = make_server("select")
    first, second = consoles(server, name="first"), consoles(server, name="second")
    first.submit("a")
    second.submit("b")
    socks = [first.connection, second.connection]
    disconnect_all()
    assert first.connection is None and second.connection is None
    assert all(s.fileno() == -1 for s in socks)
    assert first.submit("c") == "c -> C"  # opens a new one


def test_finish_disconnects_every_console(make_server, consoles, capsys):
    from nbio_helpers.ui.notebook import finish

    console = consoles(make_server("select"))
    assert console.submit("x") == "x -> X"
    sock = console.connection
    finish()
    assert console.connection is None and sock.fileno() == -1
    assert capsys.readouterr().out == "servers running: none\nnbio threads alive: 0\n"
