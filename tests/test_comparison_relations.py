"""nbio_helpers.measure.relations: which relations appear, what each checks, on made-up rows.

The measured side (the same function on real rows, on this machine) is in
tests/test_relations.py (slow).
"""

import contextlib
import io
import math

import pytest

from nbio_helpers.measure import ComparisonRow, Relation, comparison_relations, print_relations

pytestmark = pytest.mark.alone  # measures: runs alone under pytest -n

NOTEBOOK_04 = [
    "every echo of the load came back intact",
    "busy polling goes round thousands of times a second with nothing to do, and burns a core "
    "where one is free",
    "the sleeping poller goes round at most once per nap",
    "the sleeping poller answers at most one message per client per nap",
    "select sleeps until there is work (no CPU while idle)",
    "busy polling answers sooner than the sleeping poller",
    "select answers without waiting out a nap",
    "select handles more messages than the sleeping poller",
    "select answers no more than 2 ms later than busy polling",
]


def row(label, model, options=None, **figures):
    """A row as compare() makes it, with plausible figures of a waiting model."""
    base = {
        "idle_cpu": 0.0,
        "idle_cpu_range": (0.0, 0.0),
        "idle_wakeups": 0.0,
        "idle_clients": 20,
        "median_latency": 2e-5,
        "median_range": (2e-5, 3e-5),
        "tail_latency": 4e-5,
        "tail_name": "p90",
        "latency_samples": 102,
        "throughput": 100_000,
        "throughput_range": (90_000, 110_000),
        "loaded_cpu": 0.6,
        "loaded_cpu_range": (0.5, 0.7),
        "load_ok": True,
    }
    base.update(figures)
    return ComparisonRow(label, model, dict(options or {}), **base)


def rows_04():
    return [
        row(
            "polling (busy)",
            "polling",
            {"interval": 0},
            idle_cpu=0.98,
            idle_wakeups=25_000,
            median_latency=4e-5,
        ),
        row(
            "polling (10 ms sleep)",
            "polling",
            {"interval": 0.01},
            idle_cpu=0.01,
            idle_wakeups=93,
            median_latency=5.4e-3,
            throughput=1_900,
        ),
        row("select", "select"),
    ]


def rows_05(tried=1050, select_served=1013):
    conns = {"tried": tried, "max_connections": tried}
    rows = [
        row("blocking", "blocking", median_latency=3e-5, tried=tried, max_connections=1),
        row("threads", "threads", **conns),
    ]
    for r in rows_04():
        r.tried, r.max_connections = tried, tried
        rows.append(r)
    rows[-1].max_connections = select_served
    rows += [row("selectors", "selectors", **conns), row("asyncio", "asyncio", **conns)]
    return rows


def failed(relations):
    return [sentence for sentence, holds in relations if not holds]


def test_notebook_04_gets_nine_relations_in_teaching_order():
    relations = comparison_relations(rows_04(), spare_cores=2.0)
    assert [sentence for sentence, _ in relations] == NOTEBOOK_04
    assert all(holds for _, holds in relations)


def test_notebook_05_gets_the_same_nine_named_for_its_models_and_three_more():
    relations = comparison_relations(rows_05(), spare_cores=2.0, platform="linux")
    sentences = [s.replace("select, selectors and asyncio", "select") for s, _ in relations]
    assert sentences[:9] == [
        s.replace("select sleeps", "select sleep")
        .replace("select answers", "select answer")
        .replace("select handles", "select handle")
        for s in NOTEBOOK_04
    ]
    assert sentences[9:] == [
        "blocking serves one client at a time",
        "threads, selectors and asyncio serve every connection",
        "select serves only the clients it can watch",
    ]
    assert not failed(relations)


def test_the_same_sentences_on_every_os():
    linux = comparison_relations(rows_05(), spare_cores=2.0, platform="linux")
    mac = comparison_relations(rows_05(), spare_cores=None, platform="darwin")
    windows = comparison_relations(rows_05(tried=500, select_served=500), platform="win32")
    assert [s for s, _ in linux] == [s for s, _ in mac] == [s for s, _ in windows]
    assert not failed(linux) and not failed(mac) and not failed(windows)


def test_select_beyond_its_limit_must_refuse_some_and_serve_others():
    # Linux: with 1,050 connections some descriptors reach 1024: serving all is impossible.
    assert failed(comparison_relations(rows_05(select_served=1050), platform="linux")) == [
        "select serves only the clients it can watch"
    ]
    assert failed(comparison_relations(rows_05(select_served=0), platform="linux")) == [
        "select serves only the clients it can watch"
    ]
    # Windows: 510 connections fit (with the listener and the waker: 512); 511 do not.
    assert not failed(comparison_relations(rows_05(510, 510), platform="win32"))
    assert failed(comparison_relations(rows_05(511, 511), platform="win32")) == [
        "select serves only the clients it can watch"
    ]


def test_a_spinning_select_is_caught_with_its_figures():
    rows = rows_04()
    rows[2].idle_cpu, rows[2].idle_wakeups = 0.5, 40_000
    relations = comparison_relations(rows, spare_cores=2.0)
    assert failed(relations) == ["select sleeps until there is work (no CPU while idle)"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(AssertionError) as raised:
        print_relations(relations)
    assert "✗ select sleeps until there is work" in out.getvalue()
    assert out.getvalue().count("✓") == 8
    message = str(raised.value)
    assert "does not hold here: select sleeps" in message and "50.0% of a core" in message


def test_wake_ups_count_too():
    rows = rows_04()
    rows[2].idle_wakeups = 500  # little CPU, but it wakes up for nothing
    assert failed(comparison_relations(rows)) == [
        "select sleeps until there is work (no CPU while idle)"
    ]


def test_busy_polling_cpu_is_checked_only_where_a_core_is_free():
    rows = rows_04()
    rows[0].idle_cpu = 0.3  # a loaded machine gave it a third of a core
    busy = NOTEBOOK_04[1]
    assert busy not in failed(comparison_relations(rows, spare_cores=None))
    assert busy not in failed(comparison_relations(rows, spare_cores=0.5))
    assert failed(comparison_relations(rows, spare_cores=2.0)) == [busy]
    rows[0].idle_wakeups = 600  # rounds are always checked
    assert failed(comparison_relations(rows, spare_cores=0.5)) == [busy]


def test_busy_polling_is_never_required_to_beat_select():
    rows = rows_04()
    rows[0].median_latency, rows[2].median_latency = 4.3e-5, 2.1e-5  # select quicker
    assert not failed(comparison_relations(rows))
    rows[0].median_latency, rows[2].median_latency = 1.8e-5, 5.0e-5  # busy quicker
    assert not failed(comparison_relations(rows))
    rows[2].median_latency = 1.8e-5 + 0.0021  # select 2.1 ms later
    assert failed(comparison_relations(rows)) == [NOTEBOOK_04[-1]]


def test_the_sleeper_checks_follow_its_nap_and_the_load():
    rows = rows_04()
    rows[1].options = {"interval": 0.05}  # 50 ms naps: at most 22 rounds a second
    rows[1].idle_wakeups, rows[1].throughput = 30, 350
    assert failed(comparison_relations(rows)) == [NOTEBOOK_04[2]]
    assert not failed(comparison_relations(rows, sleeper_interval=0.01))  # explicit nap
    rows = rows_04()
    rows[1].throughput = 2_500  # more than 20 clients x 100 naps a second
    assert failed(comparison_relations(rows)) == [NOTEBOOK_04[3]]
    assert not failed(comparison_relations(rows, load_clients=40))


def test_only_the_parts_that_were_measured():
    rows = rows_04()
    for r in rows:
        r.throughput = r.median_latency = math.nan
        r.throughput_range = r.median_range = (math.nan, math.nan)
    sentences = [s for s, _ in comparison_relations(rows)]
    assert sentences == [NOTEBOOK_04[1], NOTEBOOK_04[2], NOTEBOOK_04[4]]
    rows = rows_04()
    rows[2].median_latency = math.nan  # measured for the others, not for select
    assert (
        "not measured"
        in next(r for r in comparison_relations(rows) if r.sentence == NOTEBOOK_04[6]).figures
    )
    assert NOTEBOOK_04[6] in failed(comparison_relations(rows))


def test_models_are_recognised_by_model_and_options_not_labels():
    rows = rows_04()
    for r, label in zip(rows, ["spin", "nap", "kernel waits"]):
        r.label = label
    assert [s for s, _ in comparison_relations(rows)] == NOTEBOOK_04
    assert comparison_relations([row("x", "threads")]) == [
        ("every echo of the load came back intact", True)
    ]


def test_a_relation_is_a_sentence_and_a_verdict():
    relation = Relation("it holds", 1, "figures")
    sentence, holds = relation
    assert (sentence, holds) == ("it holds", True) == relation
    assert relation.sentence == "it holds" and relation.holds is True
    assert relation.figures == "figures"


def test_print_relations_prints_only_the_sentences():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_relations(comparison_relations(rows_04(), spare_cores=2.0))
    assert out.getvalue().splitlines() == [f"✓ {s}" for s in NOTEBOOK_04]
