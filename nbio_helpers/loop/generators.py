"""Step 2 · generator tasks: a task is a generator that yields what it waits for.

``yield "read", sock`` suspends the task until ``sock`` is readable (``"write"``: writable);
the loop resumes it then, from the very line where it stopped. One function per client reads
top to bottom, however many turns of the loop it takes.
"""

from __future__ import annotations

from nbio_helpers.loop.reactor import Reactor


class GeneratorLoop(Reactor):
    """A :class:`Reactor` that runs generator tasks (``spawn(task)``)."""

    def __init__(self, selector=None):
        super().__init__(selector)
        self.tasks = set()  # every task not finished yet

    def spawn(self, task):
        """Start the generator ``task`` on the next turn. Returns it."""
        self.tasks.add(task)
        self.call_soon(self.step, task)
        return task

    def step(self, task, error=None):
        """Run ``task`` until it yields what it waits for (or raise ``error`` in it first)."""
        try:
            what, *args = task.throw(error) if error else task.send(None)
        except StopIteration:
            self.tasks.discard(task)
            return
        getattr(self, "wait_" + what)(task, *args)  # wait_read(task, sock)...

    def wait_read(self, task, sock):
        def ready():
            self.remove_reader(sock)
            self.step(task)

        self.add_reader(sock, ready)

    def wait_write(self, task, sock):
        def ready():
            self.remove_writer(sock)
            self.step(task)

        self.add_writer(sock, ready)


__all__ = ["GeneratorLoop"]
