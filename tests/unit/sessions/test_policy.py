"""The rules a new upload must satisfy: file name, media type, size, quota and the chunk plan."""

from __future__ import annotations

import math
from typing import Any

import pytest

from lfusys.errors import InvalidInput, TooLarge
from lfusys.sessions.policy import (
    ChunkPlan,
    check_file_size,
    clean_file_name,
    clean_file_type,
    plan_chunks,
    quota_exceeded,
)
from lfusys.settings import MAX_CHUNKS, GiB, MiB, Settings, TiB, load_settings

KiB = 1024


def _settings(**overrides: Any) -> Settings:
    """Valid settings (checked as at start-up) from defaults and ``overrides``, ignoring the environment."""
    return load_settings({}, **overrides)


# --- file name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("report.pdf", "report.pdf"),
        ("  report.pdf \t", "report.pdf"),
        ("my report (final).pdf", "my report (final).pdf"),
        ("...", "..."),
        (".bashrc", ".bashrc"),
        ("a" * 255, "a" * 255),
    ],
)
def test_an_ordinary_name_is_kept(raw: str, stored: str) -> None:
    assert clean_file_name(raw) == stored


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("..\\..\\windows\\system32\\config", ".._.._windows_system32_config"),
        ("/etc/shadow", "_etc_shadow"),
        ("C:\\boot.ini", "C:_boot.ini"),
        ("/", "_"),
        ("/..", "_.."),
        ("../", ".._"),
        ("dir/sub/file.txt", "dir_sub_file.txt"),
    ],
)
def test_path_separators_become_underscores(raw: str, stored: str) -> None:
    assert clean_file_name(raw) == stored


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("a\x00b.txt", "ab.txt"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("tab\there.txt", "tabhere.txt"),
        ("bell\x07.txt", "bell.txt"),
        ("del\x7f.txt", "del.txt"),
        ("c1\x85\x9b.txt", "c1.txt"),
        ("\x00 padded.txt \x1f", "padded.txt"),
    ],
)
def test_control_characters_are_removed(raw: str, stored: str) -> None:
    assert clean_file_name(raw) == stored


@pytest.mark.parametrize(
    "override",
    ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"],
)
def test_bidirectional_overrides_cannot_disguise_an_extension(override: str) -> None:
    assert clean_file_name(f"invoice{override}fdp.exe") == "invoicefdp.exe"


def test_the_name_is_stored_in_nfc() -> None:
    decomposed = "re\u0301sume\u0301.pdf"

    cleaned = clean_file_name(decomposed)

    assert cleaned == "r\u00e9sum\u00e9.pdf"
    assert len(cleaned) == len("resume.pdf")


def test_non_latin_names_are_kept() -> None:
    assert clean_file_name("отчёт 2024 📄.pdf") == "отчёт 2024 📄.pdf"


@pytest.mark.parametrize(
    "raw",
    ["", " ", "\t\n", ".", "..", " .. ", "\x00", "\x00\x01\x02", ".\x00.", "\u202e", "\u202e..\u202c", "\u3000"],
)
def test_a_name_without_a_visible_character_other_than_dots_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="file_name"):
        clean_file_name(raw)


def test_a_name_over_255_characters_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at most 255"):
        clean_file_name("a" * 256)


def test_the_length_limit_applies_after_cleaning() -> None:
    assert clean_file_name("\x00" * 10 + "a" * 255) == "a" * 255
    assert clean_file_name("e\u0301" * 255) == "\u00e9" * 255


# --- media type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("image/png", "image/png"),
        ("IMAGE/PNG", "image/png"),
        ("  text/plain ", "text/plain"),
        ("image/svg+xml", "image/svg+xml"),
        ("application/vnd.ms-excel", "application/vnd.ms-excel"),
        ("application/x-7z-compressed", "application/x-7z-compressed"),
        ("", "application/octet-stream"),
        ("   ", "application/octet-stream"),
    ],
)
def test_a_media_type_is_stored_in_lower_case(raw: str, stored: str) -> None:
    assert clean_file_type(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "image",
        "image/",
        "/png",
        "image/png/x",
        "image / png",
        "text/plain; charset=utf-8",
        "*/*",
        "image/*",
        "../etc/passwd",
        "text/html\r\nx-injected: 1",
        "imag\u00e9/png",
        "-image/png",
        "image/" + "a" * 128,
        "a" * 128 + "/png",
    ],
)
def test_anything_but_a_plain_media_type_is_refused(raw: str) -> None:
    with pytest.raises(InvalidInput, match="file_type"):
        clean_file_type(raw)


def test_the_longest_allowed_media_type_parts_are_accepted() -> None:
    longest = "a" * 127 + "/" + "b" * 127

    assert clean_file_type(longest) == longest


# --- size and quota ------------------------------------------------------------------------


def test_file_size_bounds() -> None:
    settings = _settings(max_file_size=1000)

    check_file_size(1, settings)
    check_file_size(1000, settings)
    with pytest.raises(InvalidInput, match="at least 1 byte"):
        check_file_size(0, settings)
    with pytest.raises(InvalidInput):
        check_file_size(-5, settings)
    with pytest.raises(TooLarge, match="at most 1000 bytes"):
        check_file_size(1001, settings)


def test_a_quota_refusal_says_what_is_left() -> None:
    assert quota_exceeded(6_000, 10_000).message == "storage quota exceeded: 4000 of 10000 bytes left"
    assert quota_exceeded(6_000, 10_000).status_code == 413


def test_a_user_already_over_quota_has_nothing_left() -> None:
    assert quota_exceeded(12_000, 10_000).message == "storage quota exceeded: 0 of 10000 bytes left"


# --- chunk plan ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_size", "plan"),
    [
        (1, ChunkPlan(chunk_size=1, total_chunks=1)),
        (8 * MiB - 1, ChunkPlan(chunk_size=8 * MiB - 1, total_chunks=1)),
        (8 * MiB, ChunkPlan(chunk_size=8 * MiB, total_chunks=1)),
        (8 * MiB + 1, ChunkPlan(chunk_size=8 * MiB, total_chunks=2)),
        (3 * 8 * MiB, ChunkPlan(chunk_size=8 * MiB, total_chunks=3)),
        (MAX_CHUNKS * 8 * MiB, ChunkPlan(chunk_size=8 * MiB, total_chunks=MAX_CHUNKS)),
    ],
)
def test_the_default_is_8_mib_and_never_larger_than_the_file(file_size: int, plan: ChunkPlan) -> None:
    settings = _settings(max_file_size=5 * TiB)

    assert plan_chunks(file_size, None, settings) == plan


def test_one_byte_more_than_10000_default_chunks_grows_the_chunk_by_a_whole_mib() -> None:
    settings = _settings(max_file_size=5 * TiB)

    plan = plan_chunks(MAX_CHUNKS * 8 * MiB + 1, None, settings)

    assert plan == ChunkPlan(chunk_size=9 * MiB, total_chunks=math.ceil((MAX_CHUNKS * 8 * MiB + 1) / (9 * MiB)))
    assert plan.total_chunks <= MAX_CHUNKS


@pytest.mark.parametrize("file_size", [80 * GiB, 100 * GiB + 12345, 1 * TiB, 5 * TiB - 1, 5 * TiB])
def test_large_files_get_the_smallest_whole_mib_chunk_that_fits_in_10000_chunks(file_size: int) -> None:
    settings = _settings(max_file_size=5 * TiB)

    plan = plan_chunks(file_size, None, settings)

    assert plan.chunk_size % MiB == 0
    assert plan.total_chunks == math.ceil(file_size / plan.chunk_size) <= MAX_CHUNKS
    assert math.ceil(file_size / (plan.chunk_size - MiB)) > MAX_CHUNKS or plan.chunk_size == 8 * MiB
    assert settings.uploads.min_chunk_size <= plan.chunk_size <= settings.uploads.max_chunk_size


def test_the_largest_allowed_file_fits() -> None:
    settings = _settings(max_file_size=5 * TiB)

    plan = plan_chunks(5 * TiB, None, settings)

    assert plan == ChunkPlan(chunk_size=525 * MiB, total_chunks=9987)


def test_a_grown_default_never_exceeds_the_largest_chunk_allowed() -> None:
    # LFUSYS_MAX_CHUNK_SIZE=100MB, LFUSYS_MAX_FILE_SIZE=1TB: start-up accepts it because 10,000 chunks
    # of 100 MB hold 1 TB, but growing in whole MiB (96 MiB > 100 MB) must not overshoot the maximum.
    settings = _settings(max_chunk_size=100 * 1000**2, max_file_size=1000**4)

    plan = plan_chunks(1000**4, None, settings)

    assert plan.chunk_size <= settings.uploads.max_chunk_size
    assert plan.total_chunks <= MAX_CHUNKS


def test_small_test_settings_give_multi_chunk_plans() -> None:
    settings = _settings(min_chunk_size=1 * KiB, default_chunk_size=4 * KiB)

    assert plan_chunks(4 * KiB + 1, None, settings) == ChunkPlan(chunk_size=4 * KiB, total_chunks=2)
    assert plan_chunks(MAX_CHUNKS * 4 * KiB, None, settings) == ChunkPlan(chunk_size=4 * KiB, total_chunks=MAX_CHUNKS)
    assert plan_chunks(MAX_CHUNKS * 4 * KiB + 1, None, settings) == ChunkPlan(chunk_size=1 * MiB, total_chunks=40)


@pytest.mark.parametrize("proposed", [5 * MiB, 6 * MiB + 3, 64 * MiB, 1 * GiB])
def test_a_proposal_within_bounds_is_accepted(proposed: int) -> None:
    settings = _settings()

    plan = plan_chunks(10 * GiB, proposed, settings)

    assert plan == ChunkPlan(chunk_size=proposed, total_chunks=math.ceil(10 * GiB / proposed))


def test_a_proposal_below_the_minimum_is_refused() -> None:
    settings = _settings()

    with pytest.raises(InvalidInput, match=f"at least {5 * MiB} bytes"):
        plan_chunks(100 * MiB, 5 * MiB - 1, settings)


def test_a_proposal_above_the_maximum_is_refused() -> None:
    settings = _settings()

    with pytest.raises(InvalidInput, match=f"at most {1 * GiB} bytes"):
        plan_chunks(10 * GiB, 1 * GiB + 1, settings)


def test_a_proposal_giving_exactly_10000_chunks_is_accepted() -> None:
    settings = _settings(max_file_size=5 * TiB)

    plan = plan_chunks(MAX_CHUNKS * 5 * MiB, 5 * MiB, settings)

    assert plan == ChunkPlan(chunk_size=5 * MiB, total_chunks=MAX_CHUNKS)


def test_a_proposal_giving_more_than_10000_chunks_is_refused() -> None:
    settings = _settings(max_file_size=5 * TiB)

    with pytest.raises(InvalidInput, match="more than 10000 chunks"):
        plan_chunks(MAX_CHUNKS * 5 * MiB + 1, 5 * MiB, settings)


def test_a_proposal_larger_than_the_file_gives_one_chunk_of_the_file_size() -> None:
    settings = _settings()

    assert plan_chunks(1000, 64 * MiB, settings) == ChunkPlan(chunk_size=1000, total_chunks=1)


def test_a_proposal_is_checked_even_for_a_file_smaller_than_the_minimum() -> None:
    settings = _settings()

    with pytest.raises(InvalidInput, match="at least"):
        plan_chunks(10, 10, settings)
    assert plan_chunks(10, 5 * MiB, settings) == ChunkPlan(chunk_size=10, total_chunks=1)


@pytest.mark.parametrize("file_size", [1, 4095, 4096, 4097, 12_345, 10 * MiB + 7])
def test_every_plan_covers_the_file_exactly(file_size: int) -> None:
    settings = _settings(min_chunk_size=1 * KiB, default_chunk_size=4 * KiB)

    plan = plan_chunks(file_size, None, settings)

    last = file_size - plan.chunk_size * (plan.total_chunks - 1)
    assert 1 <= last <= plan.chunk_size
    assert plan.chunk_size <= file_size
