"""The behaviour every UploadStore / FileStore adapter must have."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from lfusys.auth.records import User
from lfusys.files.records import FileRecord
from lfusys.sessions.records import QuotaExceeded, UploadSession, UploadStatus
from lfusys.storage.objects import ChunkStored
from lfusys.storage.ports import Backend, Part

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
async def owner(backend: Backend) -> User:
    return await a_user(backend)


async def a_user(backend: Backend) -> User:
    user = User(
        id=uuid.uuid4().hex, email=f"{uuid.uuid4().hex}@example.com", name="O", password_hash=None, created_at=NOW
    )
    await backend.users.create(user)
    return user


def session_record(owner: User, total: int = 3, size: int = 2500, **changes: object) -> UploadSession:
    fields: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "owner_id": owner.id,
        "file_name": "f.bin",
        "file_type": "application/octet-stream",
        "file_size": size,
        "chunk_size": 1000,
        "total_chunks": total,
        "status": UploadStatus.PENDING,
        "created_at": NOW,
        "updated_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
        **changes,
    }
    return UploadSession(**fields)  # type: ignore[arg-type]


async def a_session(store: Backend, owner: User, total: int = 3, size: int = 2500, **changes: object) -> UploadSession:
    session = session_record(owner, total, size, **changes)
    await store.uploads.create(session, quota=None)
    return session


async def full_session(store: Backend, owner: User) -> UploadSession:
    session = await a_session(store, owner)
    for n in range(1, session.total_chunks + 1):
        await record_one(store, session.id, n)
    return session


async def record_one(store: Backend, upload_id: str, n: int) -> UploadSession | None:
    """Record one chunk's storage event; the session afterwards, if it exists."""
    sessions = await store.uploads.record_chunks([ChunkStored(upload_id, n)], NOW)
    return sessions[0] if sessions else None


def a_file(owner: User, created_at: datetime, size: int = 10) -> FileRecord:
    return FileRecord(
        id=uuid.uuid4().hex,
        owner_id=owner.id,
        upload_id=uuid.uuid4().hex,
        name="f.bin",
        type="application/octet-stream",
        size=size,
        checksum="0" * 64,
        created_at=created_at,
    )


async def test_a_created_session_reads_back(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner)

    assert await backend.uploads.get(session.id) == session
    assert await backend.uploads.get("missing") is None


async def test_recording_chunks_is_a_set_and_moves_pending_to_in_progress(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner)

    first = await record_one(backend, session.id, 2)
    again = await record_one(backend, session.id, 2)

    assert first is not None
    assert again is not None
    assert first.status is UploadStatus.IN_PROGRESS
    assert (first.recorded_chunks, again.recorded_chunks) == (1, 1)
    assert again.stored_chunks == 1


async def test_a_batch_of_chunks_of_several_sessions_is_recorded_at_once(backend: Backend, owner: User) -> None:
    first = await a_session(backend, owner)
    second = await a_session(backend, owner, total=1, size=10)
    batch = [ChunkStored(first.id, 1), ChunkStored(second.id, 1), ChunkStored(first.id, 1), ChunkStored("missing", 1)]

    sessions = await backend.uploads.record_chunks(batch, NOW)

    assert [(s.id, s.recorded_chunks, s.status) for s in sessions] == [
        (first.id, 1, UploadStatus.IN_PROGRESS),
        (second.id, 1, UploadStatus.IN_PROGRESS),
    ]
    assert await backend.uploads.record_chunks([], NOW) == []


async def test_chunks_out_of_range_are_not_recorded(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner)

    for n in (0, -1, 4):
        result = await record_one(backend, session.id, n)
        assert result is not None
        assert result.recorded_chunks == 0
    assert await record_one(backend, "missing", 1) is None


async def test_concurrent_records_of_all_chunks_count_each_once(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner, total=20, size=20_000)

    await asyncio.gather(*(record_one(backend, session.id, n) for n in [*range(1, 21)] * 3))

    stored = await backend.uploads.get(session.id)
    assert stored is not None
    assert (stored.recorded_chunks, stored.stored_chunks) == (20, 20)


async def test_hashes_and_records_combine_per_chunk(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner)

    await backend.uploads.save_chunk_hash(session.id, 1, "a" * 64, NOW)
    await backend.uploads.save_chunk_hash(session.id, 1, "b" * 64, NOW)  # first hash wins
    await record_one(backend, session.id, 1)
    await record_one(backend, session.id, 2)
    await backend.uploads.save_chunk_hash(session.id, 2, "c" * 64, NOW)

    chunks = await backend.uploads.list_chunks(session.id)
    assert [(c.n, c.sha256, c.recorded) for c in chunks] == [(1, "a" * 64, True), (2, "c" * 64, True)]
    stored = await backend.uploads.get(session.id)
    assert stored is not None
    assert (stored.stored_chunks, stored.recorded_chunks) == (2, 2)


async def test_chunk_records_are_listed_in_pages(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner, total=25, size=25_000)
    for n in reversed(range(1, 26)):
        await backend.uploads.save_chunk_hash(session.id, n, f"{n:064x}", NOW)

    pages = []
    after = 0
    while page := await backend.uploads.list_chunks(session.id, after=after, limit=10):
        pages.append([chunk.n for chunk in page])
        after = page[-1].n

    assert pages == [list(range(1, 11)), list(range(11, 21)), list(range(21, 26))]
    assert await backend.uploads.list_chunks("missing") == []


async def test_the_assembly_and_its_parts_are_kept_for_whoever_holds_the_lease(backend: Backend, owner: User) -> None:
    session = await full_session(backend, owner)
    await backend.uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE)

    assert not await backend.uploads.set_assembly(session.id, "other", "a1")
    assert await backend.uploads.set_assembly(session.id, "w", "a1")
    await backend.uploads.record_parts(session.id, [Part(1, "e1"), Part(3, "e3")])

    kept = await backend.uploads.get(session.id)
    assert kept is not None
    assert kept.assembly_id == "a1"
    chunks = await backend.uploads.list_chunks(session.id)
    assert [(c.n, c.part_etag) for c in chunks] == [(1, "e1"), (2, None), (3, "e3")]

    # Forgetting the assembly forgets its parts too.
    assert await backend.uploads.set_assembly(session.id, "w", None)
    forgotten = await backend.uploads.get(session.id)
    assert forgotten is not None
    assert forgotten.assembly_id is None
    assert [c.part_etag for c in await backend.uploads.list_chunks(session.id)] == [None, None, None]


async def test_a_hash_is_kept_only_while_the_session_takes_chunks(backend: Backend, owner: User) -> None:
    taking = await a_session(backend, owner)
    cancelled = await a_session(backend, owner)
    await backend.uploads.cancel(cancelled.id, NOW)
    overdue = await a_session(backend, owner, expires_at=NOW - timedelta(seconds=1))

    kept = await backend.uploads.save_chunk_hash(taking.id, 1, "a" * 64, NOW)
    refused = await backend.uploads.save_chunk_hash(cancelled.id, 1, "b" * 64, NOW)
    late = await backend.uploads.save_chunk_hash(overdue.id, 1, "c" * 64, NOW)

    assert kept is not None
    assert kept.stored_chunks == 1
    assert refused is not None
    assert (refused.status, refused.stored_chunks) == (UploadStatus.CANCELLED, 0)
    assert late is not None
    assert late.stored_chunks == 0
    assert await backend.uploads.list_chunks(cancelled.id) == []
    assert await backend.uploads.list_chunks(overdue.id) == []
    assert await backend.uploads.save_chunk_hash("missing", 1, "d" * 64, NOW) is None


async def test_a_finished_session_records_nothing(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner)
    await backend.uploads.cancel(session.id, NOW)

    result = await record_one(backend, session.id, 1)

    assert result is not None
    assert result.status is UploadStatus.CANCELLED
    assert result.recorded_chunks == 0


async def test_only_a_full_session_can_be_claimed_and_only_once(backend: Backend, owner: User) -> None:
    partial = await a_session(backend, owner)
    await record_one(backend, partial.id, 1)
    full = await full_session(backend, owner)

    assert await backend.uploads.claim_finalize(partial.id, "w1", NOW, NOW + LEASE) is None
    claims = await asyncio.gather(
        *(backend.uploads.claim_finalize(full.id, f"w{i}", NOW, NOW + LEASE) for i in range(8))
    )

    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].status is UploadStatus.FINALIZING


async def test_a_lapsed_lease_is_taken_over_and_the_old_holder_cannot_complete(backend: Backend, owner: User) -> None:
    session = await full_session(backend, owner)
    assert await backend.uploads.claim_finalize(session.id, "old", NOW, NOW + LEASE) is not None
    assert await backend.uploads.claim_finalize(session.id, "new", NOW + LEASE / 2, NOW + LEASE) is None

    later = NOW + LEASE + timedelta(seconds=1)
    taken = await backend.uploads.claim_finalize(session.id, "new", later, later + LEASE)

    assert taken is not None
    assert taken.lease_owner == "new"
    assert not await backend.uploads.renew_lease(session.id, "old", later + LEASE)
    assert not await backend.uploads.complete(session.id, "old", "file", later)
    assert await backend.uploads.renew_lease(session.id, "new", later + 2 * LEASE)
    assert await backend.uploads.complete(session.id, "new", "file", later)
    completed = await backend.uploads.get(session.id)
    assert completed is not None
    assert (completed.status, completed.file_id, completed.lease_owner) == (UploadStatus.COMPLETED, "file", None)


async def test_cancel_applies_only_to_sessions_taking_chunks(backend: Backend, owner: User) -> None:
    pending = await a_session(backend, owner)
    full = await full_session(backend, owner)
    await backend.uploads.claim_finalize(full.id, "w", NOW, NOW + LEASE)

    cancelled = await backend.uploads.cancel(pending.id, NOW)
    finalizing = await backend.uploads.cancel(full.id, NOW)

    assert cancelled is not None
    assert cancelled.status is UploadStatus.CANCELLED
    assert finalizing is not None
    assert finalizing.status is UploadStatus.FINALIZING
    assert await backend.uploads.cancel("missing", NOW) is None


async def test_due_to_expire_lists_overdue_sessions_that_take_chunks_and_changes_nothing(
    backend: Backend, owner: User
) -> None:
    overdue = await a_session(backend, owner, expires_at=NOW - timedelta(seconds=1))
    sooner = await a_session(backend, owner, expires_at=NOW - timedelta(hours=1))
    current = await a_session(backend, owner)
    cancelled = await a_session(backend, owner, expires_at=NOW - timedelta(seconds=1))
    await backend.uploads.cancel(cancelled.id, NOW)

    due = await backend.uploads.due_to_expire(NOW, 10)
    again = await backend.uploads.due_to_expire(NOW, 10)

    assert [s.id for s in due] == [s.id for s in again] == [sooner.id, overdue.id]
    assert [s.id for s in await backend.uploads.due_to_expire(NOW, 1)] == [sooner.id]
    unchanged = await backend.uploads.get(current.id)
    assert unchanged is not None
    assert unchanged.status is UploadStatus.PENDING


async def test_expire_marks_only_an_overdue_session_that_takes_chunks(backend: Backend, owner: User) -> None:
    overdue = await a_session(backend, owner, expires_at=NOW - timedelta(seconds=1))
    current = await a_session(backend, owner)
    full = await full_session(backend, owner)
    await backend.uploads.claim_finalize(full.id, "w", NOW, NOW + LEASE)

    assert await backend.uploads.expire(overdue.id, NOW)
    assert not await backend.uploads.expire(overdue.id, NOW)  # already expired
    assert not await backend.uploads.expire(current.id, NOW)
    assert not await backend.uploads.expire(full.id, NOW + timedelta(days=2))
    assert not await backend.uploads.expire("missing", NOW)
    for session, status in ((overdue, "expired"), (current, "pending"), (full, "finalizing")):
        stored = await backend.uploads.get(session.id)
        assert stored is not None
        assert stored.status == status


async def test_finished_sessions_need_cleanup_until_marked(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner)
    await a_session(backend, owner)  # still pending: no cleanup
    await backend.uploads.cancel(session.id, NOW)

    assert [s.id for s in await backend.uploads.needing_cleanup(10)] == [session.id]
    await backend.uploads.mark_cleaned(session.id, NOW)
    assert await backend.uploads.needing_cleanup(10) == []


async def test_stalled_finds_sessions_with_lost_events_full_unclaimed_ones_and_lapsed_leases(
    backend: Backend, owner: User
) -> None:
    uploads = backend.uploads
    lost_event = await a_session(backend, owner)
    await uploads.save_chunk_hash(lost_event.id, 1, "a" * 64, NOW)  # stored, never recorded
    one_chunk_pending = await a_session(backend, owner, total=1, size=10)
    await uploads.save_chunk_hash(one_chunk_pending.id, 1, "b" * 64, NOW)
    full_unclaimed = await full_session(backend, owner)
    all_recorded_partial = await a_session(backend, owner)
    await record_one(backend, all_recorded_partial.id, 1)  # waiting for more chunks: fine
    busy = await a_session(backend, owner)
    await uploads.save_chunk_hash(busy.id, 1, "c" * 64, NOW + timedelta(minutes=10))
    lapsed = await full_session(backend, owner)
    await uploads.claim_finalize(lapsed.id, "w", NOW, NOW + LEASE)
    held = await full_session(backend, owner)
    later = NOW + timedelta(minutes=10)
    await uploads.claim_finalize(held.id, "w", later, later + LEASE)

    stalled = await uploads.stalled(later, later - timedelta(minutes=5), 10)
    again = await uploads.stalled(later, later - timedelta(minutes=5), 10)

    expected = {lost_event.id, one_chunk_pending.id, full_unclaimed.id, lapsed.id}
    assert {s.id for s in stalled} == expected
    assert {s.id for s in again} == expected  # reading changes nothing
    assert len(await uploads.stalled(later, later - timedelta(minutes=5), 2)) == 2


async def test_claiming_counts_attempts_and_a_released_lease_is_taken_over_at_once(
    backend: Backend, owner: User
) -> None:
    session = await full_session(backend, owner)
    first = await backend.uploads.claim_finalize(session.id, "w1", NOW, NOW + LEASE)
    assert first is not None
    assert first.finalize_attempts == 1

    await backend.uploads.release_lease(session.id, "someone-else", NOW)
    assert await backend.uploads.claim_finalize(session.id, "w2", NOW, NOW + LEASE) is None
    await backend.uploads.release_lease(session.id, "w1", NOW)
    second = await backend.uploads.claim_finalize(session.id, "w2", NOW, NOW + LEASE)

    assert second is not None
    assert (second.lease_owner, second.finalize_attempts) == ("w2", 2)


async def test_only_the_lease_holder_fails_a_session_and_the_reason_is_kept(backend: Backend, owner: User) -> None:
    session = await full_session(backend, owner)
    await backend.uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE)

    assert not await backend.uploads.fail(session.id, "other", "nope", NOW)
    assert await backend.uploads.fail(session.id, "w", "chunk 2 is missing", NOW)
    assert not await backend.uploads.fail(session.id, "w", "again", NOW)

    failed = await backend.uploads.get(session.id)
    assert failed is not None
    assert (failed.status, failed.failure_reason, failed.lease_owner) == (
        UploadStatus.FAILED,
        "chunk 2 is missing",
        None,
    )
    assert [s.id for s in await backend.uploads.needing_cleanup(10)] == [session.id]


async def test_failed_and_finalizing_sessions_of_every_owner_are_listed_by_status(
    backend: Backend, owner: User
) -> None:
    uploads = backend.uploads
    other = await a_user(backend)
    later_failure, first_failure = await full_session(backend, owner), await full_session(backend, other)
    for session, minutes in ((later_failure, 2), (first_failure, 1)):
        await uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE)
        assert await uploads.fail(session.id, "w", f"failed after {minutes}m", NOW + timedelta(minutes=minutes))
    lease_ends_later, lease_ends_first = await full_session(backend, owner), await full_session(backend, other)
    await uploads.claim_finalize(lease_ends_later.id, "w", NOW, NOW + 2 * LEASE)
    await uploads.claim_finalize(lease_ends_first.id, "w", NOW, NOW + LEASE)
    completed = await full_session(backend, owner)
    await uploads.claim_finalize(completed.id, "w", NOW, NOW + LEASE)
    await uploads.complete(completed.id, "w", "file", NOW)
    await a_session(backend, owner)  # pending
    await uploads.cancel((await a_session(backend, other)).id, NOW)

    failed = await uploads.by_status(UploadStatus.FAILED, 10)
    finalizing = await uploads.by_status(UploadStatus.FINALIZING, 10)

    assert [(s.id, s.failure_reason) for s in failed] == [
        (first_failure.id, "failed after 1m"),
        (later_failure.id, "failed after 2m"),
    ]
    assert [(s.id, s.lease_owner) for s in finalizing] == [(lease_ends_first.id, "w"), (lease_ends_later.id, "w")]
    assert [s.id for s in await uploads.by_status(UploadStatus.FAILED, 1)] == [first_failure.id]
    assert [s.id for s in await uploads.by_status(UploadStatus.FINALIZING, 1)] == [lease_ends_first.id]
    assert [s.id for s in await uploads.by_status(UploadStatus.FAILED, 10)] == [s.id for s in failed]  # unchanged


async def test_a_session_leaves_the_finalizing_list_for_the_failed_one(backend: Backend, owner: User) -> None:
    session = await full_session(backend, owner)
    await backend.uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE)
    assert [s.id for s in await backend.uploads.by_status(UploadStatus.FINALIZING, 10)] == [session.id]
    assert await backend.uploads.by_status(UploadStatus.FAILED, 10) == []

    await backend.uploads.fail(session.id, "w", "chunk 1 is missing", NOW)
    await backend.uploads.mark_cleaned(session.id, NOW)

    assert await backend.uploads.by_status(UploadStatus.FINALIZING, 10) == []
    assert [s.id for s in await backend.uploads.by_status(UploadStatus.FAILED, 10)] == [session.id]


@pytest.mark.parametrize("status", [UploadStatus.PENDING, UploadStatus.IN_PROGRESS, UploadStatus.COMPLETED])
async def test_only_failed_and_finalizing_sessions_are_listed_by_status(backend: Backend, status: UploadStatus) -> None:
    with pytest.raises(ValueError, match=status.value):
        await backend.uploads.by_status(status, 10)


async def unfinished_ids(backend: Backend, owner_id: str, limit: int = 2) -> list[str]:
    """Every page of the owner's unfinished sessions, walked to the end."""
    seen: list[str] = []
    cursor = None
    while True:
        page = await backend.uploads.list_unfinished(owner_id, limit, cursor)
        assert len(page.sessions) <= limit
        seen += [s.id for s in page.sessions]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def test_unfinished_sessions_are_listed_newest_first_in_pages(backend: Backend, owner: User) -> None:
    older = [await a_session(backend, owner, total=1, created_at=NOW - timedelta(minutes=i)) for i in (3, 2, 1)]
    same_time = [await a_session(backend, owner, total=1) for _ in range(2)]
    gone = await a_session(backend, owner, total=1)
    await backend.uploads.cancel(gone.id, NOW)
    finalizing = await full_session(backend, owner)
    await backend.uploads.claim_finalize(finalizing.id, "w", NOW, NOW + LEASE)

    expected = sorted([finalizing.id, *(s.id for s in same_time)], reverse=True) + [s.id for s in reversed(older)]
    for limit in (1, 2, 3, 100):
        assert await unfinished_ids(backend, owner.id, limit) == expected
    first = await backend.uploads.list_unfinished(owner.id, 100, None)
    assert first.next_cursor is None
    assert (await backend.uploads.list_unfinished("nobody", 10, None)).sessions == []


async def test_a_walk_through_the_pages_is_stable_while_sessions_start_and_end(backend: Backend, owner: User) -> None:
    sessions = [await a_session(backend, owner, total=1, created_at=NOW - timedelta(minutes=i)) for i in range(7)]
    first = await backend.uploads.list_unfinished(owner.id, 2, None)
    assert [s.id for s in first.sessions] == [sessions[0].id, sessions[1].id]

    # Meanwhile: one new upload starts, one already listed and one not yet listed are cancelled.
    await a_session(backend, owner, total=1, created_at=NOW + timedelta(minutes=1))
    await backend.uploads.cancel(sessions[1].id, NOW)
    await backend.uploads.cancel(sessions[4].id, NOW)
    seen = [s.id for s in first.sessions]
    cursor = first.next_cursor
    while cursor is not None:
        page = await backend.uploads.list_unfinished(owner.id, 2, cursor)
        seen += [s.id for s in page.sessions]
        cursor = page.next_cursor

    # Every session unfinished throughout is listed exactly once; nothing is listed twice.
    assert seen == [s.id for i, s in enumerate(sessions) if i != 4]


@pytest.mark.parametrize("cursor", ["not base64!", "bm9wZQ", "WzEsMl0", "W10", "x" * 300])
async def test_a_malformed_session_cursor_is_a_value_error(backend: Backend, owner: User, cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await backend.uploads.list_unfinished(owner.id, 10, cursor)


async def joined_session(store: Backend, owner: User, sources: tuple[str, ...], **changes: object) -> UploadSession:
    """A session joined from other uploads: no chunks of its own, so it is full from the start."""
    return await a_session(
        store, owner, total=0, size=1500, chunk_size=0, status=UploadStatus.IN_PROGRESS, sources=sources, **changes
    )


async def test_the_sources_of_a_joined_session_are_kept_and_read_back_everywhere(backend: Backend, owner: User) -> None:
    uploads = backend.uploads
    ordinary = await a_session(backend, owner)
    joined = await joined_session(backend, owner, ("first", "second"), expires_at=NOW - timedelta(seconds=1))

    assert await uploads.get(joined.id) == joined
    page = await uploads.list_unfinished(owner.id, 10, None)
    assert {s.id: s.sources for s in page.sessions} == {joined.id: ("first", "second"), ordinary.id: ()}
    assert await uploads.due_to_expire(NOW, 10) == [joined]
    claimed = await uploads.claim_finalize(joined.id, "w", NOW, NOW + LEASE)
    assert claimed is not None
    assert claimed.sources == ("first", "second")
    assert [s.sources for s in await uploads.by_status(UploadStatus.FINALIZING, 10)] == [("first", "second")]


async def test_a_session_with_no_chunks_of_its_own_is_stalled_once_idle_and_claimed_at_once(
    backend: Backend, owner: User
) -> None:
    uploads = backend.uploads
    joined = await joined_session(backend, owner, ("first", "second"))
    later = NOW + timedelta(minutes=10)

    assert await uploads.stalled(NOW, NOW - timedelta(minutes=5), 10) == []  # not idle yet
    assert [s.id for s in await uploads.stalled(later, later - timedelta(minutes=5), 10)] == [joined.id]
    claimed = await uploads.claim_finalize(joined.id, "w", later, later + LEASE)

    assert claimed is not None
    assert (claimed.status, claimed.recorded_chunks, claimed.total_chunks) == (UploadStatus.FINALIZING, 0, 0)
    assert await uploads.claim_finalize(joined.id, "other", later, later + LEASE) is None


# --- usage and quota -----------------------------------------------------------------------


async def test_usage_counts_unfinished_sessions_until_they_end_without_a_file(backend: Backend, owner: User) -> None:
    uploads = backend.uploads
    cancelled = await a_session(backend, owner, size=100, total=1)
    expired = await a_session(backend, owner, size=200, total=1, expires_at=NOW - timedelta(seconds=1))
    failed = await a_session(backend, owner, size=400, total=1)
    await record_one(backend, failed.id, 1)
    completed = await a_session(backend, owner, size=800, total=1)
    await record_one(backend, completed.id, 1)
    assert await uploads.usage(owner.id) == 1500

    await uploads.cancel(cancelled.id, NOW)
    await uploads.cancel(cancelled.id, NOW)  # a repeat releases nothing more
    await uploads.expire(expired.id, NOW)
    await uploads.claim_finalize(failed.id, "w", NOW, NOW + LEASE)
    await uploads.fail(failed.id, "w", "broken", NOW)
    await uploads.claim_finalize(completed.id, "w", NOW, NOW + LEASE)
    await uploads.complete(completed.id, "w", "file", NOW)

    assert await uploads.usage(owner.id) == 800  # the completed one is now a file's bytes
    assert await uploads.usage("nobody") == 0


async def test_a_session_that_does_not_fit_the_quota_is_refused_and_not_stored(backend: Backend, owner: User) -> None:
    await a_session(backend, owner, size=6_000, total=6)
    too_big = session_record(owner, total=5, size=4_001)

    with pytest.raises(QuotaExceeded) as raised:
        await backend.uploads.create(too_big, quota=10_000)

    assert (raised.value.used, raised.value.quota) == (6_000, 10_000)
    assert await backend.uploads.get(too_big.id) is None
    assert await backend.uploads.usage(owner.id) == 6_000
    exact = msgspec.structs.replace(too_big, id=uuid.uuid4().hex, file_size=4_000)
    await backend.uploads.create(exact, quota=10_000)
    assert await backend.uploads.usage(owner.id) == 10_000


async def test_concurrent_sessions_against_a_quota_that_fits_one_reserve_exactly_one(
    backend: Backend, owner: User
) -> None:
    sessions = [session_record(owner, total=1, size=700) for _ in range(20)]

    results = await asyncio.gather(
        *(backend.uploads.create(session, quota=1_000) for session in sessions), return_exceptions=True
    )

    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, QuotaExceeded) for r in results if r is not None)
    assert await backend.uploads.usage(owner.id) == 700
    assert len(await unfinished_ids(backend, owner.id)) == 1


# --- a size fixed after the session began ---------------------------------------------------


async def test_setting_the_size_shrinks_the_session_and_the_owners_usage_by_the_difference(
    backend: Backend, owner: User
) -> None:
    uploads = backend.uploads
    session = await a_session(backend, owner, total=5, size=5_000)
    await a_session(backend, owner, total=1, size=100)

    resized = await uploads.set_size(session.id, 2_500, 3)
    again = await uploads.set_size(session.id, 2_500, 3)  # a repeat changes nothing

    expected = msgspec.structs.replace(session, file_size=2_500, total_chunks=3)
    assert resized == again == expected
    assert await uploads.get(session.id) == expected
    assert await uploads.usage(owner.id) == 2_600


async def test_a_size_larger_than_the_reservation_is_a_value_error_and_changes_nothing(
    backend: Backend, owner: User
) -> None:
    session = await a_session(backend, owner, total=5, size=5_000)

    with pytest.raises(ValueError, match="5000"):
        await backend.uploads.set_size(session.id, 5_001, 6)

    assert await backend.uploads.get(session.id) == session
    assert await backend.uploads.usage(owner.id) == 5_000


async def test_the_size_of_an_unknown_session_is_not_set(backend: Backend) -> None:
    assert await backend.uploads.set_size("missing", 10, 1) is None


async def test_the_size_of_a_session_that_no_longer_takes_chunks_is_not_set(backend: Backend, owner: User) -> None:
    uploads = backend.uploads
    cancelled = await a_session(backend, owner, total=1, size=100)
    await uploads.cancel(cancelled.id, NOW)
    expired = await a_session(backend, owner, total=1, size=200, expires_at=NOW - timedelta(seconds=1))
    await uploads.expire(expired.id, NOW)
    finalizing = await a_session(backend, owner, total=1, size=400)
    await record_one(backend, finalizing.id, 1)
    await uploads.claim_finalize(finalizing.id, "w", NOW, NOW + LEASE)
    completed = await a_session(backend, owner, total=1, size=800)
    await record_one(backend, completed.id, 1)
    await uploads.claim_finalize(completed.id, "w", NOW, NOW + LEASE)
    await uploads.complete(completed.id, "w", "file", NOW)
    assert await uploads.usage(owner.id) == 1_200

    for session in (cancelled, expired, finalizing, completed):
        assert await uploads.set_size(session.id, 10, 1) is None
        unchanged = await uploads.get(session.id)
        assert unchanged is not None
        assert unchanged.file_size == session.file_size
    assert await uploads.usage(owner.id) == 1_200


async def test_a_session_whose_size_was_set_is_finalized_once_its_new_chunks_are_recorded(
    backend: Backend, owner: User
) -> None:
    uploads = backend.uploads
    session = await a_session(backend, owner, total=5, size=5_000)
    await record_one(backend, session.id, 1)
    await uploads.set_size(session.id, 2_500, 3)

    await record_one(backend, session.id, 2)
    assert await uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE) is None
    beyond = await record_one(backend, session.id, 4)  # no longer one of its chunks
    assert beyond is not None
    assert beyond.recorded_chunks == 2
    await record_one(backend, session.id, 3)
    claimed = await uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE)

    assert claimed is not None
    assert (claimed.status, claimed.recorded_chunks, claimed.total_chunks) == (UploadStatus.FINALIZING, 3, 3)
    assert claimed.chunk_length(3) == 500


async def test_a_size_set_while_the_session_is_cancelled_releases_exactly_its_reservation(
    backend: Backend, owner: User
) -> None:
    sessions = [await a_session(backend, owner, total=5, size=5_000) for _ in range(4)]
    await a_session(backend, owner, total=100, size=100_000)  # kept: what is released too much shows

    await asyncio.gather(
        *(backend.uploads.set_size(s.id, 1_000 * (i + 1), i + 1) for i, s in enumerate(sessions)),
        *(backend.uploads.cancel(s.id, NOW) for s in sessions),
    )

    assert await backend.uploads.usage(owner.id) == 100_000


async def test_sizes_set_at_once_leave_the_usage_at_the_size_that_won(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner, total=5, size=5_000)

    await asyncio.gather(
        *(backend.uploads.set_size(session.id, size, 5) for size in (4_000, 3_000, 2_000, 4_500)),
        return_exceptions=True,  # a size larger than one already set is refused
    )

    final = await backend.uploads.get(session.id)
    assert final is not None
    assert await backend.uploads.usage(owner.id) == final.file_size < 5_000


async def test_a_file_is_created_once(backend: Backend, owner: User) -> None:
    record = a_file(owner, NOW)

    first = await backend.files.create_if_absent(record)
    second = await backend.files.create_if_absent(
        FileRecord(**{**{f: getattr(record, f) for f in record.__struct_fields__}, "name": "other.bin"})
    )

    assert first == record
    assert second == record
    assert await backend.files.get(record.id) == record


async def test_files_are_listed_newest_first_in_pages(backend: Backend, owner: User) -> None:
    records = [a_file(owner, NOW + timedelta(seconds=i)) for i in range(5)]
    same_time = [a_file(owner, NOW + timedelta(seconds=10)) for _ in range(2)]
    for record in records + same_time:
        await backend.files.create_if_absent(record)

    seen: list[str] = []
    cursor = None
    while True:
        page = await backend.files.list_by_owner(owner.id, 2, cursor)
        seen += [f.id for f in page.files]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    expected = [r.id for r in sorted(same_time, key=lambda r: r.id, reverse=True)] + [r.id for r in reversed(records)]
    assert seen == expected
    assert (await backend.files.list_by_owner("nobody", 10, None)).files == []


@pytest.mark.parametrize("cursor", ["not base64!", "bm9wZQ", "WzEsMl0"])
async def test_a_malformed_cursor_is_a_value_error(backend: Backend, owner: User, cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await backend.files.list_by_owner(owner.id, 10, cursor)


async def test_only_the_owner_deletes_a_file_and_its_bytes_leave_the_usage(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner, size=7, total=1)
    await record_one(backend, session.id, 1)
    await backend.uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE)
    record = await backend.files.create_if_absent(a_file(owner, NOW, size=7))
    await backend.uploads.complete(session.id, "w", record.id, NOW)
    assert await backend.uploads.usage(owner.id) == 7

    assert await backend.files.delete(record.id, "someone-else") is None
    assert await backend.uploads.usage(owner.id) == 7
    assert await backend.files.delete(record.id, owner.id) == record
    assert await backend.files.delete(record.id, owner.id) is None
    assert await backend.files.get(record.id) is None
    assert await backend.uploads.usage(owner.id) == 0
