"""RefusalReport: one line per episode of turned-away clients, with counts (no clock, no server)."""

from nbio_helpers.cli.refusal_report import RefusalReport

EMFILE = "out of descriptors (ulimit -n 64)"
FDSET = "descriptor beyond select()'s FD_SETSIZE (1024)"


def test_nothing_to_say_without_refusals():
    report = RefusalReport()
    assert [report.update({}, now=t / 2) for t in range(10)] == [[]] * 10
    assert report.flush() == []


def test_an_episode_is_one_line_once_it_is_over():
    report = RefusalReport(quiet=1.0)
    assert report.update({EMFILE: 3}, now=0.0) == []
    assert report.update({EMFILE: 90}, now=0.5) == []
    assert report.update({EMFILE: 143}, now=1.0) == []
    assert report.update({EMFILE: 143}, now=1.5) == []
    assert report.update({EMFILE: 143}, now=2.0) == [f"turned away 143 clients: {EMFILE}"]
    assert report.update({EMFILE: 143}, now=9.0) == []
    assert report.update({EMFILE: 144}, now=10.0) == []  # a new episode
    assert report.update({EMFILE: 144}, now=11.0) == [f"turned away 1 client: {EMFILE}"]


def test_a_long_episode_says_so_every_ten_seconds():
    report = RefusalReport(quiet=1.0, every=10.0)
    lines = [report.update({EMFILE: 100 * t}, now=t * 0.5) for t in range(1, 45)]
    printed = [(t, line) for t, got in enumerate(lines, 1) for line in got]
    assert [t * 0.5 for t, _ in printed] == [10.5, 20.5]
    assert printed[0][1] == f"turned away 2,100 clients: {EMFILE}"
    assert printed[1][1] == f"turned away 2,000 clients: {EMFILE}"
    assert report.flush() == [f"turned away 300 clients: {EMFILE}"]


def test_each_reason_has_its_line():
    report = RefusalReport()
    report.update({EMFILE: 2, FDSET: 5}, now=0.0)
    assert report.update({EMFILE: 2, FDSET: 5}, now=1.0) == [
        f"turned away 2 clients: {EMFILE}",
        f"turned away 5 clients: {FDSET}",
    ]


def test_flush_at_the_end_reports_what_is_pending():
    report = RefusalReport()
    report.update({FDSET: 7}, now=0.0)
    assert report.flush() == [f"turned away 7 clients: {FDSET}"]
    assert report.flush() == []
