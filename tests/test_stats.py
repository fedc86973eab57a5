"""nbio_helpers.measure.stats: the one percentile, the tail rule, the spread of trials (no
sockets)."""

import math

import pytest

from nbio_helpers.measure.stats import BEYOND, Spread, Tail, percentile, tail, tail_name


def test_percentile_is_nearest_rank():
    samples = list(range(1, 41))  # 40 samples; their order does not matter
    assert percentile(reversed(samples), 0.9) == 36
    assert percentile(samples, 0.5) == 20
    assert percentile(samples, 0.0) == 1 and percentile(samples, 1.0) == 40
    assert percentile([7.0], 0.9) == 7.0
    assert math.isnan(percentile([], 0.9))


def test_percentile_refuses_a_fraction_out_of_range():
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1, 2], 90)


@pytest.mark.parametrize(
    "count, name",
    [
        (0, "max"),
        (10, "max"),
        (99, "max"),
        (100, "p90"),
        (999, "p90"),
        (1000, "p99"),
        (50_000, "p99"),
    ],
)
def test_the_tail_rule(count, name):
    assert tail_name(count) == name
    assert tail(range(count)).name == name


def test_a_tail_always_leaves_enough_samples_beyond_it():
    # The rule's reason: never call the maximum (or a near neighbour of it) a p99.
    for count in (5, 99, 100, 250, 999, 1000, 4321):
        samples = list(range(count))
        slow = tail(samples)
        beyond = sum(1 for s in samples if s > slow.value)
        if slow.name == "max":
            assert count < 10 * BEYOND and beyond == 0
        else:
            assert beyond >= BEYOND, (count, slow)


def test_tail_values():
    assert tail(range(50)) == Tail("max", 49)
    assert tail(range(100)) == Tail("p90", 89)
    assert tail(range(1000)) == Tail("p99", 989)
    assert math.isnan(tail([]).value) and tail([]).name == "max"
    assert str(Tail("p90", 0.5)) == "p90 0.5"


def test_spread_of_trials():
    spread = Spread.of([3.0, 1.0, 2.0])
    assert spread == Spread(2.0, 1.0, 3.0, (3.0, 1.0, 2.0))
    pooled = Spread.of([1.0, 3.0], pooled=2.5)
    assert pooled.value == 2.5 and (pooled.low, pooled.high) == (1.0, 3.0)
    assert Spread.of([1.0, math.nan, 2.0]).low == 1.0  # a failed trial is left out
    empty = Spread.of([])
    assert math.isnan(empty.value) and math.isnan(empty.low) and empty.trials == ()
    assert Spread.of([0.001, 0.002]).scaled(1e3) == Spread(1.5, 1.0, 2.0, (1.0, 2.0))
    assert "2 trials" in str(Spread.of([1.0, 2.0]))
