"""How the pieces of an assembly are grouped into parts of at least the least part size."""

from __future__ import annotations

from lfusys.storage.ports import PartSource, Piece, group_pieces

MIN = 10


def grouped(*sizes: int) -> list[list[int]]:
    """The sizes of the pieces of each part, for pieces of ``sizes`` in turn."""
    parts = group_pieces([Piece("u1", size, n=n) for n, size in enumerate(sizes, start=1)], min_part_size=MIN)
    return [[piece.size for piece in part.pieces] for part in parts]


def test_pieces_of_at_least_the_least_part_size_are_parts_of_their_own() -> None:
    assert grouped(10, 25, 10) == [[10], [25], [10]]


def test_small_pieces_are_joined_with_those_after_them_until_the_part_is_large_enough() -> None:
    assert grouped(3, 4, 5, 10) == [[3, 4, 5], [10]]
    assert grouped(3, 25, 4) == [[3, 25], [4]]


def test_the_last_part_may_be_small() -> None:
    assert grouped(10, 3) == [[10], [3]]
    assert grouped(10, 3, 4) == [[10], [3, 4]]
    assert grouped(4) == [[4]]


def test_no_pieces_make_no_parts() -> None:
    assert group_pieces([], min_part_size=MIN) == []


def test_parts_are_numbered_from_one_and_keep_their_pieces_in_order() -> None:
    tail = Piece("u1", 3, tail_end=33)
    chunks = [Piece("u2", 10, n=1), Piece("u2", 2, n=2), Piece("u2", 2, n=3)]

    parts = group_pieces([tail, *chunks], min_part_size=MIN)

    assert parts == [PartSource(1, (tail, chunks[0])), PartSource(2, (chunks[1], chunks[2]))]
    assert [part.size for part in parts] == [13, 4]


def test_the_least_part_size_is_s3s_unless_told() -> None:
    mib = 1024 * 1024

    parts = group_pieces([Piece("u1", 5 * mib - 1, n=1), Piece("u1", 1, n=2), Piece("u1", 5 * mib, n=3)])

    assert [len(part.pieces) for part in parts] == [2, 1]
