"""The chat of notebook 06, on every step's server: the same protocol, the same answers."""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time

import pytest

from nbio_helpers.events import ERROR
from nbio_helpers.loop import CHAT_SERVERS, start_chat
from nbio_helpers.loop.chat import Room, decode
from nbio_helpers.server import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.usefixtures("nothing_left_running")]

TIMED_STEPS = ("timers", "coroutines", "asyncio")


class Client:
    """A chat client for tests: ``send(text)``, ``line()`` (with a timeout), ``lines(n)``."""

    def __init__(self, address, timeout=5.0):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode() + b"\n")

    def line(self) -> str | None:
        """The next line, or None at the end of the stream."""
        while b"\n" not in self.buffer:
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def join(self, name):
        assert self.line() == "* welcome to nbio chat! what is your name?"
        self.send(name)
        hello = self.line()
        assert hello.startswith(f"* hello {name}!"), hello
        return hello

    def close(self):
        self.sock.close()


@pytest.fixture(params=list(CHAT_SERVERS))
def step(request):
    return request.param


@pytest.fixture
def chat_server(step):
    server = start_chat(step, name=f"test-chat-{step}")
    yield server
    server.stop()


@pytest.fixture
def clients(chat_server):
    made = []

    def make():
        client = Client(chat_server.address)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# ----------------------------------------------------------------------- the room, no socket
class FakeClient:
    def __init__(self):
        self.name, self.heard = None, []

    def say(self, text):
        self.heard.append(text)


def test_room_names_and_broadcast_without_sockets():
    room = Room()
    a, b = FakeClient(), FakeClient()
    assert room.name_problem("") and room.name_problem("two words")
    assert room.name_problem("x" * 17) and room.name_problem("/who")
    assert room.name_problem("Zoë") is None and room.name_problem("a-b_9") is None
    room.join(a, "Alice")
    assert room.name_problem("alice") == "! alice is taken: what is your name?"
    room.join(b, "bob")
    assert a.heard == [
        "* hello Alice! nobody else is here yet. (/who lists who is here, /quit leaves)",
        "* bob joined",
    ]
    assert b.heard[0].startswith("* hello bob! here too: Alice.")
    assert room.hear(a, "hi") and b.heard[-1] == "Alice: hi"
    assert room.hear(a, "   ") and room.hear(a, "") and b.heard[-1] == "Alice: hi"
    assert room.hear(a, "/who") and a.heard[-1] == "* here: Alice, bob"
    assert room.hear(a, "/nope") and a.heard[-1].startswith("! unknown command /nope")
    assert room.hear(a, "/not a command") and b.heard[-1] == "Alice: /not a command"
    assert not room.hear(b, "/quit") and b.heard[-1] == "* bye, bob!"
    room.leave(b)
    room.leave(b)
    assert a.heard[-1] == "* bob left" and a.heard.count("* bob left") == 1


def test_decode_replaces_bad_bytes_and_control_characters():
    assert decode(b"caf\xc3\xa9") == "café"
    assert decode(b"\xff\x1b[2J\tok\x7f") == "\ufffd\ufffd[2J\tok\ufffd"


# ------------------------------------------------------------------------- every step, live
def test_two_clients_names_broadcast_who_quit(clients):
    alice, bob = clients(), clients()
    assert alice.join("alice").endswith(
        "nobody else is here yet. (/who lists who is here, /quit leaves)"
    )
    assert "here too: alice." in bob.join("bob")
    assert alice.line() == "* bob joined"
    alice.send("hello bob")
    assert bob.line() == "alice: hello bob"
    bob.send("/who")
    assert bob.line() == "* here: alice, bob"
    bob.send("/quit")
    assert bob.line() == "* bye, bob!"
    assert bob.line() is None  # closed by the server
    assert alice.line() == "* bob left"


def test_name_asked_again_until_valid_and_free(clients):
    alice, second = clients(), clients()
    alice.join("alice")
    assert second.line().startswith("* welcome")
    second.send("not valid!")
    assert second.line().startswith("! a name is 1 to 16")
    second.send("ALICE")
    assert second.line() == "! ALICE is taken: what is your name?"
    second.send("carol")
    assert second.line().startswith("* hello carol! here too: alice.")
    assert alice.line() == "* carol joined"


def test_byte_by_byte_crlf_and_utf8_split(clients):
    alice, bob = clients(), clients()
    alice.join("alice")
    bob.join("bob")
    alice.line()
    for byte in "Zoë → 東京\r\n".encode():
        bob.send(bytes([byte]))
    assert alice.line() == "bob: Zoë → 東京"


def test_many_lines_in_one_send_and_non_utf8(clients):
    alice, bob = clients(), clients()
    alice.join("alice")
    bob.join("bob")
    alice.line()
    bob.send(b"one\ntwo\n\n\xff\xfe three\n")
    assert [alice.line() for _ in range(3)] == ["bob: one", "bob: two", "bob: \ufffd\ufffd three"]


def test_a_client_leaving_without_a_word(clients, chat_server):
    alice, bob = clients(), clients()
    alice.join("alice")
    bob.join("bob")
    alice.line()
    bob.close()
    assert alice.line() == "* bob left"
    carol = clients()
    carol.join("bob")  # the name is free again


def test_a_client_that_resets(clients):
    alice, bob = clients(), clients()
    alice.join("alice")
    bob.join("bob")
    alice.line()
    linger = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)
    bob.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    bob.close()  # RST
    assert alice.line() == "* bob left"


def test_client_gone_before_naming_and_mid_line(clients, chat_server):
    first = clients()
    assert first.line().startswith("* welcome")
    first.send(b"half a na")
    first.close()  # the unterminated name counts as a line
    alice = clients()
    alice.join("alice")
    bob = clients()
    bob.join("bob")
    alice.line()
    bob.send(b"unterminated")
    bob.sock.shutdown(socket.SHUT_WR)
    assert alice.line() == "bob: unterminated"  # as asyncio's readline() at EOF
    assert alice.line() == "* bob left"


def test_over_long_line_gets_an_error_and_a_close(clients, chat_server):
    alice, bob = clients(), clients()
    alice.join("alice")
    bob.join("bob")
    alice.line()
    bob.send(b"before\n" + b"x" * 5000)
    assert alice.line() == "bob: before"  # nothing valid lost
    assert bob.line() == "! line too long (the limit is 1024 bytes): bye"
    assert bob.line() is None
    assert alice.line() == "* bob left"


def test_over_long_line_byte_by_byte_keeps_the_server_bounded(step):
    with start_chat(step, max_line=64, name="bounded") as server:
        client = Client(server.address)
        client.line()
        sent = 0
        try:
            for _ in range(10_000):
                client.sock.send(b"y" * 8)
                sent += 8
                if sent > 64 * 4:
                    break
        except OSError:
            pass
        assert client.line() == "! line too long (the limit is 64 bytes): bye"
        assert client.line() is None
        client.close()


def test_a_client_that_never_reads_does_not_stall_the_room(step):
    with start_chat(step, high_water=8192, name="hog") as server:
        hog, talker, listener = (Client(server.address) for _ in range(3))
        hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.join("hog")
        talker.join("talker")
        listener.join("listener")
        line = "x" * 1000
        for i in range(300):  # ~300 KB to a client that never reads
            talker.send(f"{i} {line}")
        got = [listener.line() for _ in range(300)]
        assert got[-1] == f"talker: 299 {line}"  # every line to the reader arrived
        for c in (hog, talker, listener):
            c.close()


def test_stop_with_clients_connected_leaves_nothing(step, open_fds, nbio_threads):
    server = start_chat(step, name="stopping")
    clients = [Client(server.address) for _ in range(5)]
    for i, c in enumerate(clients):
        c.join(f"c{i}")
    server.stop()
    server.stop()
    for c in clients:
        c.sock.settimeout(5)
        lines = []
        while (line := c.line()) is not None:  # the end of the stream, not a hang
            lines.append(line)
        c.close()
    assert nbio_threads() == []
    assert server.events.count(ERROR) == 0, server.events.events(ERROR)


@pytest.mark.slow
@pytest.mark.parametrize("step", TIMED_STEPS)
def test_idle_timeout(step):
    with start_chat(step, idle_timeout=0.3, name="idle") as server:
        quiet, chatty = Client(server.address), Client(server.address)
        quiet.join("quiet")
        chatty.join("chatty")
        quiet.line()
        start = time.monotonic()
        for _ in range(6):  # chatty keeps talking: it stays
            chatty.send("still here")
            time.sleep(0.1)
        heard = []
        while (line := quiet.line()) == "chatty: still here":
            heard.append(line)
        assert line == "! nothing from you for 0.3 s: bye"
        assert heard  # it heard chatty before timing out
        assert 0.25 < time.monotonic() - start < 3
        assert quiet.line() is None
        assert chatty.line() == "* quiet left"
        chatty.send("/who")
        assert chatty.line() == "* here: chatty"
        chatty.close()
        quiet.close()


@pytest.mark.parametrize("step", ["callbacks", "generators"])
def test_steps_without_timers_refuse_an_idle_timeout(step):
    with pytest.raises(ValueError, match="no timers"):
        CHAT_SERVERS[step](idle_timeout=5)


def test_50_clients_talk_at_once(step):
    with start_chat(step, name="crowd") as server:
        clients = [Client(server.address, timeout=10) for _ in range(50)]
        for i, c in enumerate(clients):
            c.join(f"c{i}")
        for i, c in enumerate(clients):  # the others' joins
            for _ in range(len(clients) - 1 - i):
                assert c.line().endswith("joined")
        barrier = threading.Barrier(len(clients))

        def talk(c, i):
            barrier.wait()
            c.send(f"from {i}")

        threads = [threading.Thread(target=talk, args=(c, i)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, c in enumerate(clients):
            heard = sorted(c.line() for _ in range(len(clients) - 1))
            assert heard == sorted(f"c{j}: from {j}" for j in range(len(clients)) if j != i)
        for c in clients:
            c.close()


def test_a_handler_that_fails_is_recorded_and_the_server_goes_on():
    async def broken(room, client):
        raise NameError("name 'nmae' is not defined")

    for step in ("coroutines",):
        with start_chat(step, handler=broken, name="broken") as server:
            client = Client(server.address)
            assert client.line() is None  # closed
            assert wait_until(lambda: server.events.count(ERROR) == 1, 5)
            [error] = server.events.events(ERROR)
            assert "NameError" in error.detail and "conn 1" in error.detail
            client.close()
            assert server.running


@pytest.mark.slow
def test_chat_client_helper(chat_server):
    from nbio_helpers.loop.talk import ChatClient

    with ChatClient(chat_server.address) as ann, ChatClient(chat_server.address) as bob:
        assert ann.join("ann").startswith("* hello ann!")
        assert bob.join("bob").startswith("* hello bob!")
        bob.say("hi ann")
        assert ann.lines() == ["* bob joined", "bob: hi ann"]
        assert ann.lines(quiet=0.05) == []
        with pytest.raises(TimeoutError):
            ann.line(timeout=0.05)
        bob.say("/quit")
        assert bob.lines() == ["* bye, bob!"] and bob.closed_by_server


def test_start_stop_cycles_leave_no_descriptor_or_thread(step, open_fds, nbio_threads):
    import gc
    import warnings

    def cycle():
        with start_chat(step, name="cycle") as server:
            with socket.create_connection(server.address, timeout=5) as sock:
                assert sock.recv(100).startswith(b"* welcome")
                sock.sendall(b"ann\n")
                assert sock.recv(200).startswith(b"* hello ann!")
                server.stop()  # with a client still connected

    cycle()
    gc.collect()
    before = open_fds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(5):
            cycle()
        gc.collect()
    assert open_fds() == before
    assert nbio_threads() == []
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
