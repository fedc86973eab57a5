"""Clients that stream without end: for the graceful-stop tests (in-process and CLI)."""

from __future__ import annotations

import selectors
import socket
import threading

ALPHABET = bytes(range(97, 123))
SENT = memoryview(ALPHABET * 4000)  # what each client sends, again and again
ECHO = (ALPHABET * 50000).upper()


class StreamingClients:
    """``count`` clients in one thread: send without end, check each echoed byte, stop
    sending at the server's EOF, then close. ``ends`` says how each connection ended."""

    def __init__(self, address, count: int):
        self.socks = [socket.create_connection(address, timeout=5) for _ in range(count)]
        self.sent = [0] * count
        self.received = [0] * count
        self.correct = [True] * count
        self.ends = [None] * count
        self._thread = threading.Thread(target=self._run, name="test-streaming", daemon=True)
        self._quit = threading.Event()
        self._thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            for i, sock in enumerate(self.socks):
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, i)
            while sel.get_map() and not self._quit.is_set():
                for key, mask in sel.select(0.1):
                    i = key.data
                    sock = self.socks[i]
                    try:
                        if mask & selectors.EVENT_WRITE:
                            offset = self.sent[i] % 26
                            self.sent[i] += sock.send(SENT[offset : offset + 65000])
                        if mask & selectors.EVENT_READ:
                            data = sock.recv(1 << 20)
                            if not data:
                                self.ends[i] = "eof"
                                sel.unregister(sock)
                                sock.close()  # the client's EOF, after the server's
                                continue
                            offset = self.received[i] % 26
                            self.correct[i] &= data == ECHO[offset : offset + len(data)]
                            self.received[i] += len(data)
                    except (BlockingIOError, InterruptedError):
                        pass
                    except OSError as exc:
                        self.ends[i] = type(exc).__name__
                        sel.unregister(sock)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)
        self._quit.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()
