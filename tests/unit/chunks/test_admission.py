"""Who gets a place for a chunk body, and who is told to come back: the per-user cap (429), the
global limit (503), and the places kept for users with nothing in flight."""

from __future__ import annotations

import contextlib

import pytest

from lfusys.chunks.admission import ChunkAdmission
from lfusys.errors import ServerBusy, TooManyRequests


def hold(admission: ChunkAdmission, stack: contextlib.ExitStack, user: str, count: int = 1) -> None:
    for _ in range(count):
        stack.enter_context(admission.admit(user))


def test_a_user_beyond_the_cap_is_told_to_slow_down_with_retry_after() -> None:
    admission = ChunkAdmission(total=64, per_user=2)
    with contextlib.ExitStack() as stack:
        hold(admission, stack, "ada", 2)

        with pytest.raises(TooManyRequests) as refused, admission.admit("ada"):
            pass

        assert (refused.value.status_code, refused.value.retry_after) == (429, 1)
        assert admission.in_flight == 2


def test_beyond_the_global_limit_the_server_is_busy_with_retry_after() -> None:
    admission = ChunkAdmission(total=4, per_user=16, reserve=1)
    with contextlib.ExitStack() as stack:
        hold(admission, stack, "ada", 3)
        hold(admission, stack, "bob")  # the last place, kept for users with nothing in flight

        for user in ("ada", "bob", "cy"):
            with pytest.raises(ServerBusy) as refused, admission.admit(user):
                pass
            assert (refused.value.status_code, refused.value.retry_after) == (503, 1)
        assert admission.in_flight == 4


def test_the_reserved_places_go_only_to_users_with_nothing_in_flight() -> None:
    admission = ChunkAdmission(total=8, per_user=16, reserve=2)
    with contextlib.ExitStack() as stack:
        hold(admission, stack, "ada", 6)  # all a busy user may take

        with pytest.raises(ServerBusy), admission.admit("ada"):
            pass
        hold(admission, stack, "bob")
        with pytest.raises(ServerBusy), admission.admit("bob"):
            pass  # bob now has one in flight: he is a busy user too
        hold(admission, stack, "cy")
        with pytest.raises(ServerBusy), admission.admit("dee"):
            pass  # every place is taken


def test_the_default_reserve_is_an_eighth_of_the_limit_and_at_least_one() -> None:
    for total, busy_places in ((64, 56), (8, 7), (2, 1)):
        admission = ChunkAdmission(total=total, per_user=1000)
        with contextlib.ExitStack() as stack:
            hold(admission, stack, "ada", busy_places)
            with pytest.raises(ServerBusy), admission.admit("ada"):
                pass
            hold(admission, stack, "newcomer")


def test_places_are_given_back_when_a_body_ends_however_it_ends() -> None:
    admission = ChunkAdmission(total=2, per_user=1, reserve=0)

    with contextlib.suppress(RuntimeError), admission.admit("ada"):
        raise RuntimeError("the client went away")
    with admission.admit("ada"), admission.admit("bob"):
        assert admission.in_flight == 2

    assert admission.in_flight == 0


@pytest.mark.parametrize(("total", "per_user"), [(0, 1), (1, 0), (-1, 5)])
def test_limits_below_one_are_a_programming_error(total: int, per_user: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ChunkAdmission(total=total, per_user=per_user)


def test_a_spare_place_is_taken_only_while_the_user_holds_less_than_half() -> None:
    admission = ChunkAdmission(total=64, per_user=8)
    with contextlib.ExitStack() as stack:
        hold(admission, stack, "ada", 3)
        taken = [stack.enter_context(admission.admit_if_spare("ada")) for _ in range(3)]

        assert taken == [True, False, False], "4 of 8 held: the rest is for the user's next requests"
        assert admission.in_flight == 4
        hold(admission, stack, "ada", 4)  # those requests still get in
        assert stack.enter_context(admission.admit_if_spare("bob")) is True

    assert admission.in_flight == 0, "every place is given back"


def test_no_spare_place_when_the_server_is_full_and_nothing_is_refused() -> None:
    admission = ChunkAdmission(total=4, per_user=16, reserve=1)
    with contextlib.ExitStack() as stack:
        hold(admission, stack, "ada", 3)

        with admission.admit_if_spare("ada") as placed:
            assert placed is False
        assert admission.in_flight == 3
        with admission.admit_if_spare("bob") as placed:
            assert placed is True, "the kept place is for a user with nothing in flight"
            assert admission.in_flight == 4


def test_a_spare_place_is_given_back_when_the_work_fails() -> None:
    admission = ChunkAdmission(total=8, per_user=8)

    def store() -> None:
        with admission.admit_if_spare("ada") as placed:
            assert placed
            raise RuntimeError("the chunk could not be stored")

    with pytest.raises(RuntimeError):
        store()

    assert admission.in_flight == 0
