"""The line framer, without a socket: every split of a stream gives the same lines."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbio_helpers.framing import MAX_LINE, LineFramer, LineTooLong


def feed_all(chunks, max_line=MAX_LINE):
    framer = LineFramer(max_line)
    lines = []
    for chunk in chunks:
        lines += framer.feed(chunk)
    return lines, framer


def reference_lines(stream: bytes) -> list[bytes]:
    """What the framer must return for a whole stream (its rules, written another way)."""
    return [line.removesuffix(b"\r") for line in stream.split(b"\n")[:-1]]


def test_partial_line_is_kept():
    framer = LineFramer()
    assert framer.feed(b"hel") == []
    assert framer.pending == 3
    assert framer.feed(b"lo\nwor") == [b"hello"]
    assert framer.feed(b"ld\n") == [b"world"]
    assert framer.pending == 0


def test_byte_by_byte():
    stream = b"first\nsecond line\r\n\nlast\n"
    lines, framer = feed_all([bytes([b]) for b in stream])
    assert lines == [b"first", b"second line", b"", b"last"]
    assert framer.pending == 0


def test_many_lines_in_one_chunk():
    stream = b"".join(b"line %d\n" % i for i in range(1000))
    lines, _ = feed_all([stream])
    assert lines == [b"line %d" % i for i in range(1000)]


def test_crlf_and_lone_cr():
    lines, _ = feed_all([b"a\r\nb\rc\n\r\n\r\r\n"])
    # one \r before \n goes; any other \r is data
    assert lines == [b"a", b"b\rc", b"", b"\r"]


def test_crlf_split_between_feeds():
    lines, _ = feed_all([b"abc\r", b"\ndef\r", b"\r", b"\n"])
    assert lines == [b"abc", b"def\r"]


def test_empty_lines():
    assert feed_all([b"\n\n\n"])[0] == [b"", b"", b""]


def test_non_utf8_bytes_are_kept_as_bytes():
    data = b"\xff\xfe caf\xc3\xa9 \xc3\x28 \x00\n"
    lines, _ = feed_all([data[:3], data[3:]])
    assert lines == [data[:-1]]
    assert isinstance(lines[0], bytes)


def test_utf8_character_split_across_feeds():
    text = "Zoë → 東京\n".encode()
    lines, _ = feed_all([bytes([b]) for b in text])
    assert lines[0].decode() == "Zoë → 東京"


def test_line_of_exactly_max_line_is_accepted():
    assert feed_all([b"x" * 8 + b"\n"], max_line=8)[0] == [b"x" * 8]
    assert feed_all([b"x" * 8 + b"\r\n"], max_line=8)[0] == [b"x" * 8]
    # byte by byte, with \r\n: the \r may still be a line ending
    chunks = [bytes([b]) for b in b"x" * 8 + b"\r\n"]
    assert feed_all(chunks, max_line=8)[0] == [b"x" * 8]


def test_line_over_the_limit_in_one_chunk():
    framer = LineFramer(max_line=8)
    with pytest.raises(LineTooLong, match="limit is 8 bytes") as caught:
        framer.feed(b"ok\n" + b"x" * 9 + b"\n")
    assert caught.value.lines == [b"ok"]  # nothing valid is lost
    assert caught.value.max_line == 8


def test_line_over_the_limit_without_newline_raises_at_once():
    framer = LineFramer(max_line=8)
    with pytest.raises(LineTooLong):
        framer.feed(b"x" * 9)  # no \n yet: too long already


def test_over_long_line_byte_by_byte_keeps_memory_bounded():
    framer = LineFramer(max_line=100)
    fed = 0
    with pytest.raises(LineTooLong):
        for _ in range(10_000):
            framer.feed(b"y")
            fed += 1
            assert framer.pending <= 101
    assert fed == 100  # the 101st byte raised


def test_over_long_line_split_across_feeds():
    framer = LineFramer(max_line=10)
    assert framer.feed(b"a" * 6) == []
    with pytest.raises(LineTooLong):
        framer.feed(b"a" * 6)


def test_cr_then_more_data_is_too_long():
    framer = LineFramer(max_line=4)
    assert framer.feed(b"abcd\r") == []  # may still be "abcd\r\n"
    with pytest.raises(LineTooLong):
        framer.feed(b"e")  # "abcd\re...": 6 bytes of line


def test_end_of_stream_returns_the_unterminated_line():
    framer = LineFramer()
    assert framer.feed(b"one\ntwo") == [b"one"]
    assert framer.end() == [b"two"]
    assert framer.end() == []
    framer.feed(b"three\r")
    assert framer.end() == [b"three"]


def test_bad_max_line():
    with pytest.raises(ValueError):
        LineFramer(0)


@st.composite
def stream_and_splits(draw):
    pieces = draw(
        st.lists(
            st.sampled_from([b"a", b"bc", b"\n", b"\r", b"\r\n", b"\xff", "é".encode(), b"", b" "]),
            max_size=60,
        )
    )
    stream = b"".join(pieces)
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    bounds = [0, *cuts, len(stream)]
    return stream, [stream[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(stream_and_splits())
def test_any_split_gives_the_same_lines(case):
    stream, chunks = case
    whole, framer_whole = feed_all([stream], max_line=10_000)
    split, framer_split = feed_all(chunks, max_line=10_000)
    assert split == whole == reference_lines(stream)
    assert framer_split.end() == framer_whole.end()


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(stream_and_splits(), st.integers(1, 6))
def test_the_limit_does_not_depend_on_the_split(case, max_line):
    """Over the limit or not, and the lines delivered before it, whatever the split."""
    stream, chunks = case

    def run(pieces):
        framer, got = LineFramer(max_line), []
        try:
            for piece in pieces:
                got += framer.feed(piece)
                assert framer.pending <= max_line + 1
        except LineTooLong as exc:
            return got + exc.lines, True
        return got, False

    expected_lines = reference_lines(stream)
    too_long_at = next((i for i, line in enumerate(expected_lines) if len(line) > max_line), None)
    whole, split = run([stream]), run(chunks)
    assert whole[1] == split[1]
    if too_long_at is not None:
        assert whole[1] and whole[0] == split[0] == expected_lines[:too_long_at]
    elif not whole[1]:
        assert whole[0] == split[0] == expected_lines
