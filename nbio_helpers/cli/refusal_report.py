"""What ``serve`` says on stderr when it turns clients away: one line per episode, with counts.

A server out of descriptors may turn away thousands of clients a second; one line each would
flood the terminal (and the disk). Instead the counts (:meth:`Server.refusals`, kept even
without ``record_events``) are read every half second, and a line is printed once an
episode is over (no new refusal for ``quiet`` seconds), or every ``every`` seconds while it
lasts::

    turned away 143 clients: out of descriptors (ulimit -n 64)

This is only the logic, without a clock or a server (the times are given), so it is tested
deterministically::

    report = RefusalReport()
    report.update({"out of descriptors (ulimit -n 64)": 3}, now=0.0)    # [] (episode on)
    report.update({"out of descriptors (ulimit -n 64)": 3}, now=1.5)    # ['turned away 3 ...']
"""

from __future__ import annotations

import collections


class RefusalReport:
    """Turns growing refusal counts into rate-limited lines (see the module's docstring).

    Parameters
    ----------
    quiet:
        Seconds without a new refusal that end an episode (its line is printed then).
    every:
        While an episode lasts, a line at most every this many seconds.
    """

    def __init__(self, quiet: float = 1.0, every: float = 10.0):
        self.quiet = quiet
        self.every = every
        self._reported: collections.Counter[str] = collections.Counter()
        self._seen: dict[str, int] = {}
        self._changed_at = 0.0
        self._since: float | None = None  # start of the episode, or of its last line

    def update(self, counts: dict[str, int], now: float) -> list[str]:
        """The lines to print now, given the counts so far (``{reason: clients}``) at ``now``."""
        if counts != self._seen:
            self._seen = dict(counts)
            self._changed_at = now
            if self._since is None:
                self._since = now
        if self._since is None:
            return []
        if now - self._changed_at >= self.quiet:
            self._since = None  # the episode is over
            return self.flush()
        if now - self._since >= self.every:
            self._since = now
            return self.flush()
        return []

    def flush(self) -> list[str]:
        """The lines for every refusal not reported yet (at the end, say)."""
        lines = []
        for why, total in self._seen.items():
            new = total - self._reported[why]
            if new > 0:
                lines.append(f"turned away {new:,} client{'' if new == 1 else 's'}: {why}")
                self._reported[why] = total
        return lines


__all__ = ["RefusalReport"]
