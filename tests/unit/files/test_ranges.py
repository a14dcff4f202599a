"""Headers of a download: ``Range: bytes=…`` parsing (RFC 9110 §14) and ``Content-Disposition`` (RFC 6266)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from lfusys.files.ranges import ByteRange, RangeNotSatisfiable, parse_range
from lfusys.files.service import content_disposition

SIZE = 100


# --- Range ---------------------------------------------------------------------------------


def test_no_range_header_means_the_whole_file() -> None:
    assert parse_range(None, SIZE) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-0", ByteRange(0, 0)),
        ("bytes=0-9", ByteRange(0, 9)),
        ("bytes=10-19", ByteRange(10, 19)),
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=99-99", ByteRange(99, 99)),
        ("bytes=90-", ByteRange(90, 99)),
        ("bytes=0-", ByteRange(0, 99)),
        ("bytes=99-", ByteRange(99, 99)),
        ("bytes=-1", ByteRange(99, 99)),
        ("bytes=-10", ByteRange(90, 99)),
        ("bytes=-100", ByteRange(0, 99)),
    ],
)
def test_one_satisfiable_range(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=50-100", ByteRange(50, 99)),
        ("bytes=50-1000", ByteRange(50, 99)),
        ("bytes=0-99999999999999999999999999", ByteRange(0, 99)),
        ("bytes=-101", ByteRange(0, 99)),
        ("bytes=-99999999999999999999999999", ByteRange(0, 99)),
    ],
)
def test_a_range_reaching_past_the_end_is_clipped_to_the_file(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize("header", [" bytes=0-9 ", "bytes= 0-9", "bytes=0 - 9"])
def test_whitespace_around_the_range_is_tolerated(header: str) -> None:
    assert parse_range(header, SIZE) == ByteRange(0, 9)


def test_the_length_of_a_range_counts_both_ends() -> None:
    assert ByteRange(0, 0).length == 1
    assert ByteRange(10, 19).length == 10


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=0-1, 5-6", "bytes=-5,0-1", "bytes=0-0,0-0,0-0"])
def test_several_ranges_are_answered_with_the_whole_file(header: str) -> None:
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    "header",
    [
        "bytes=100-",  # starts at the end
        "bytes=100-200",  # starts past the end
        "bytes=99999999999999999999-",  # far past the end
        "bytes=10-9",  # last before first
        "bytes=-0",  # an empty suffix
        "bytes=-00",
    ],
)
def test_an_unsatisfiable_range_is_refused(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, SIZE)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=0x10-0x20",
        "bytes=1.5-2",
        "bytes=+1-2",
        "bytes=-1-2",
        "bytes=1--2",
        "bytes=0-9;x",
        "bytes:0-9",
        "0-9",
        "bytes=\u0661-\u0662",  # Arabic-Indic digits are digits to str.isdigit, not to HTTP
    ],
)
def test_a_malformed_range_is_refused(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, SIZE)


@pytest.mark.parametrize("header", ["items=0-9", "lines=0-9", "pages=1-2", "x-custom=0-"])
def test_a_range_in_a_unit_other_than_bytes_is_ignored(header: str) -> None:
    # RFC 9110 §14.2: "An origin server MUST ignore a Range header field that contains a range unit
    # it does not understand" - the whole file (200), not 416.
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize("header", ["Bytes=0-9", "BYTES=0-9"])
def test_the_range_unit_is_case_insensitive(header: str) -> None:
    # RFC 9110 §14.1: "Range unit names are case-insensitive".
    assert parse_range(header, SIZE) == ByteRange(0, 9)


def test_a_one_byte_file_has_exactly_one_satisfiable_byte() -> None:
    assert parse_range("bytes=0-0", 1) == ByteRange(0, 0)
    assert parse_range("bytes=-5", 1) == ByteRange(0, 0)
    assert parse_range("bytes=0-", 1) == ByteRange(0, 0)
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=1-", 1)


# --- Content-Disposition -------------------------------------------------------------------


def _parts(header: str) -> tuple[str, str]:
    """The ASCII fallback and the decoded UTF-8 name of an ``attachment`` header."""
    kind, fallback, extended = header.split("; ")
    assert kind == "attachment"
    assert fallback.startswith('filename="')
    assert fallback.endswith('"')
    assert extended.startswith("filename*=UTF-8''")
    return fallback[len('filename="') : -1], unquote(extended[len("filename*=UTF-8''") :], encoding="utf-8")


def test_an_ascii_name_is_given_twice() -> None:
    header = content_disposition("report.pdf")

    assert header == "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"


def test_spaces_stay_in_the_fallback_and_are_percent_encoded_in_the_utf8_name() -> None:
    header = content_disposition("my report.pdf")

    assert header == "attachment; filename=\"my report.pdf\"; filename*=UTF-8''my%20report.pdf"


@pytest.mark.parametrize(
    ("name", "fallback"),
    [
        ("r\u00e9sum\u00e9.pdf", "r_sum_.pdf"),
        ("\u043e\u0442\u0447\u0451\u0442.txt", "_____.txt"),
        ("\U0001f4c4.txt", "_.txt"),
        ('say "hi".txt', "say _hi_.txt"),
        ("back\\slash.txt", "back_slash.txt"),
        ("semi;colon.txt", "semi_colon.txt"),
        ("crlf\r\nSet-Cookie: x=1.txt", "crlf__Set-Cookie: x=1.txt"),
        ("nul\x00del\x7f.txt", "nul_del_.txt"),
    ],
)
def test_the_fallback_is_printable_ascii_and_the_utf8_name_is_exact(name: str, fallback: str) -> None:
    header = content_disposition(name)

    ascii_name, utf8_name = _parts(header)
    assert ascii_name == fallback
    assert utf8_name == name
    assert header.isascii()
    assert all(32 <= ord(c) < 127 for c in header)


def test_the_utf8_name_is_percent_encoded_byte_by_byte() -> None:
    header = content_disposition("\u00e9 a/b'c.txt")

    assert header.endswith("filename*=UTF-8''%C3%A9%20a%2Fb%27c.txt")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-" + "9" * 5000, ByteRange(0, SIZE - 1)),
        ("bytes=-" + "9" * 5000, ByteRange(0, SIZE - 1)),
        ("bytes=10-" + "0" * 4999 + "19", ByteRange(10, 19)),
    ],
)
def test_positions_with_thousands_of_digits_are_read_as_positions(header: str, expected: ByteRange) -> None:
    assert parse_range(header, SIZE) == expected


def test_a_start_with_thousands_of_digits_is_beyond_the_end() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=" + "9" * 5000 + "-", SIZE)
