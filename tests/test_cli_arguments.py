"""Every option of every command refuses what cannot work: a usage line, exit 2, no traceback.

Property-based (hypothesis): for each option that takes a value, random values of the wrong
kind and out of range must be refused, and random values in range accepted. The options
are found in the parser itself, so a new option is tested as soon as it exists (and one with
an unchecked value fails :func:`test_every_option_value_is_checked`).
"""

from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbio_helpers.cli.main import build_parser, main

pytestmark = pytest.mark.timeout(300)

REQUIRED = {
    "serve": ["--model", "select"],
    "client": [],
    "load": [],
    "bench": [],
    "execute-notebooks": [],
    "student-edition": ["OUTDIR"],
}
"""What each command needs besides the option under test, to parse."""

FREE_TEXT = {("bench", "--json"), ("student-edition", "--source")}
"""Options whose value is a path: any text is a possible name."""

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def subparser(command: str):
    parser = build_parser([command])
    return parser._subparsers._group_actions[0].choices[command]


def options_with_values():
    found = []
    for command in REQUIRED:
        for action in subparser(command)._actions:
            if action.option_strings and action.nargs != 0 and action.dest != "help":
                found.append((command, action.option_strings[-1], action))
    return found


OPTIONS = options_with_values()
IDS = [f"{command} {option}" for command, option, _ in OPTIONS]


def parse_outcome(argv: list[str]) -> tuple[int | None, str]:
    """``main(argv)``'s exit code and stderr, for a bad value (the command never runs), or
    (None, "") if ``argv`` parses."""
    try:
        build_parser(argv).parse_args(argv)
    except SystemExit:
        pass
    else:
        return None, ""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def assert_refused(argv: list[str]) -> None:
    code, err = parse_outcome(argv)
    assert code == 2, (argv, code, err)
    assert err.startswith("usage:") and "error:" in err, (argv, err)
    assert "Traceback" not in err


def not_a(kind):
    def parses(text: str) -> bool:
        try:
            kind(text)
        except ValueError:
            return False
        return True

    return st.text(max_size=12).filter(lambda t: not parses(t))


def bad_values(action) -> st.SearchStrategy[str]:
    kind = getattr(action.type, "kind", None)
    if action.choices is not None:
        return st.text(max_size=12).filter(lambda t: t not in action.choices)
    if kind == "int":
        low, high = action.type.low, action.type.high
        return st.one_of(
            not_a(int),
            st.integers(max_value=low - 1).map(str),
            st.integers(min_value=high + 1).map(str),
            st.floats(allow_nan=True).map(repr),
        )
    if kind == "float":
        low, high = action.type.low, action.type.high
        below = st.floats(max_value=low, exclude_max=not action.type.low_open, allow_nan=False)
        return st.one_of(
            not_a(float),
            below.map(repr),
            st.floats(min_value=high, exclude_min=True).map(repr),
            st.sampled_from(["nan", "NaN", "inf", "-inf", "1e308", "1e10"]).filter(
                lambda t: not low <= float(t) <= high or math.isnan(float(t))
            ),
        )
    if kind == "host":
        return st.one_of(
            st.sampled_from(
                [
                    "",
                    " ",
                    "\t",
                    "[::1]",
                    "[127.0.0.1]",
                    "::1]",
                    "127.0.0.1:8080",
                    "local host",
                    "a:b",
                    "::zz",
                ]
            ),
            st.from_regex(r"\A\[[0-9a-f:.]{0,10}\]\Z"),
            st.text(alphabet=" \t\n", min_size=1, max_size=4),
        )
    if kind == "names":
        names = action.type.names
        unknown = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-1", min_size=1, max_size=10).filter(
            lambda t: t not in names
        )
        return st.one_of(
            st.sampled_from(["", ",", " , "]),
            st.lists(st.sampled_from(names)).flatmap(
                lambda known: unknown.map(lambda u: ",".join([*known, u]))
            ),
        )
    raise AssertionError(f"{action.option_strings}: no strategy for its values")


def good_values(action) -> st.SearchStrategy[str]:
    kind = getattr(action.type, "kind", None)
    if action.choices is not None:
        return st.sampled_from(list(action.choices))
    if kind == "int":
        return st.integers(action.type.low, action.type.high).map(str)
    if kind == "float":
        return st.floats(
            action.type.low, action.type.high, allow_nan=False, exclude_min=action.type.low_open
        ).map(repr)
    if kind == "host":
        return st.sampled_from(
            ["127.0.0.1", "::1", "localhost", "0.0.0.0", "::", "example.org", "fe80::1%lo"]
        )
    if kind == "names":
        return st.lists(st.sampled_from(action.type.names), min_size=1).map(",".join)
    raise AssertionError(action.option_strings)


def test_every_option_value_is_checked():
    unchecked = [
        f"{command} {option}"
        for command, option, action in OPTIONS
        if (command, option) not in FREE_TEXT
        and action.choices is None
        and getattr(action.type, "kind", None) is None
    ]
    assert unchecked == []
    assert len(OPTIONS) >= 15  # the discovery found the commands' options


def test_a_count_out_of_range_names_its_option():
    # Ports name what they are ("a port"); every other whole number is a count, made by
    # whole_number_option, which names the flag the learner typed.
    counts = [
        o for o in OPTIONS if getattr(o[2].type, "kind", None) == "int" and "port" not in o[1]
    ]
    assert {option for _, option, _ in counts} >= {"--clients", "--messages", "--size", "--rounds"}
    for command, option, action in counts:
        for value in (action.type.low - 1, action.type.high + 1):
            code, err = parse_outcome([command, *REQUIRED[command], f"{option}={value}"])
            assert code == 2 and f"{option} must be {action.type.low:,} to" in err, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, option, action",
    [o for o in OPTIONS if (o[0], o[1]) not in FREE_TEXT],
    ids=[i for i, o in zip(IDS, OPTIONS) if (o[0], o[1]) not in FREE_TEXT],
)
def test_wrong_and_out_of_range_values_are_refused(command, option, action):
    @SETTINGS
    @given(value=bad_values(action))
    def check(value):
        assert_refused([command, *REQUIRED[command], f"{option}={value}"])

    check()


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, option, action",
    [o for o in OPTIONS if (o[0], o[1]) not in FREE_TEXT],
    ids=[i for i, o in zip(IDS, OPTIONS) if (o[0], o[1]) not in FREE_TEXT],
)
def test_values_in_range_are_accepted(command, option, action):
    if command == "serve" and option == "--model":
        pytest.skip("REQUIRED gives --model already")

    @SETTINGS
    @given(value=good_values(action))
    def check(value):
        argv = [command, *REQUIRED[command], f"{option}={value}"]
        build_parser(argv).parse_args(argv)  # SystemExit would fail the test

    check()


# ------------------------------------------------------- the cases, as commands
CASES = [
    ["client", "--timeout", "1e10"],
    ["client", "--timeout", "0"],
    ["client", "--port", "0"],
    ["serve", "--model", "polling", "--interval", "1e308"],
    ["serve", "--model", "select", "--grace", "-1"],
    ["bench", "--clients", "25000"],
    ["bench", "--seconds", "-1"],
    ["bench", "--seconds", "nan"],
    ["execute-notebooks", "--timeout", "nan"],
    ["execute-notebooks", "--timeout", "0"],
    ["execute-notebooks", "--timeout", "-1"],
    ["serve", "--model", "select", "--host", ""],
    ["serve", "--model", "select", "--host", "[::1]"],
    ["client", "--host", ""],
    ["load", "--host", "[::1]"],
    ["load", "--size", "1e9"],
]


@pytest.mark.slow
@pytest.mark.parametrize("argv", CASES, ids=" ".join)
def test_the_command_refuses_at_once(argv):
    done = subprocess.run(
        [sys.executable, "-m", "nbio_helpers", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done
    assert done.stderr.startswith("usage:") and "error:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


@pytest.mark.parametrize(
    "argv, says",
    [
        (["load", "--clients", "10000", "--size", "65536"], "would hold 1,875 MiB at once"),
        (["load", "--clients", "10000", "--messages", "10000"], "at most 10,000,000"),
    ],
)
def test_load_refuses_what_would_not_fit(argv, says):
    code, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 2 and err.getvalue().startswith("usage:") and says in err.getvalue()


def test_a_double_dash_is_not_a_value():
    # Before Python 3.13 argparse gives ``--grace=--`` an empty list, without calling its type.
    for command, option, _ in OPTIONS:
        if (command, option) not in FREE_TEXT:
            assert_refused([command, *REQUIRED[command], f"{option}=--"])
