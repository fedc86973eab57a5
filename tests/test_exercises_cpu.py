"""The wrong answers that only their CPU gives away: a loop that spins without calling
``recv()``, ``send()`` or ``select()`` more often than a right answer would. Each checker
measures the learner thread's share of a core, and a loaded machine gives a spinning thread
less of one (with four test workers on two cores, notebook 01's busy ``select()`` loop got
under half a core and passed). So these tests run alone (tests/run_alone.py); their
checkers' other wrong answers are in test_exercises_nb01.py, _nb02.py and _nb04.py.
"""

from __future__ import annotations

import pytest
import test_exercises_nb04 as t04
from test_exercises_nb01 import spins_on_select
from test_exercises_nb02 import send_spins_on_the_clock

from nbio_helpers.exercises import NotYet
from nbio_helpers.exercises.nb01 import check_recv_exactly_timeout
from nbio_helpers.exercises.nb02 import never_read

pytestmark = [pytest.mark.alone, pytest.mark.slow, pytest.mark.timeout(60)]


def test_a_busy_select_loop_is_caught_by_its_cpu():
    verdict = check_recv_exactly_timeout.verdict(spins_on_select)
    assert not verdict.passed, verdict.text
    assert "of a core: it kept busy instead of sleeping" in verdict.message, verdict.text
    assert "let recv() do the waiting" in verdict.hint


def test_a_send_loop_that_spins_on_the_clock_shows_in_the_cpu():
    """Only the CPU of the learner's thread shows a loop that neither sends nor selects."""
    with pytest.raises(NotYet) as failure:
        never_read(send_spins_on_the_clock)
    assert "it spins instead of waiting for room" in failure.value.message


def test_a_select_round_that_spins_on_the_clock_is_caught_by_its_cpu():
    verdict = t04.rejected(t04.waits_on_the_clock)
    assert "of a core" in verdict.message and "busy while it waits" in verdict.message
    assert "select.select() do the waiting" in verdict.hint
