"""The behaviour every UploadStore / FileStore adapter must have."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from lfusys.storage.ports import FileRecord, MetadataStore, QuotaExceeded, UploadSession, UploadStatus, User

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
async def owner(metadata_store: MetadataStore) -> User:
    user = User(
        id=uuid.uuid4().hex, email=f"{uuid.uuid4().hex}@example.com", name="O", password_hash=None, created_at=NOW
    )
    await metadata_store.users.create(user)
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


async def a_session(
    store: MetadataStore, owner: User, total: int = 3, size: int = 2500, **changes: object
) -> UploadSession:
    session = session_record(owner, total, size, **changes)
    await store.uploads.create(session, quota=None)
    return session


async def full_session(store: MetadataStore, owner: User) -> UploadSession:
    session = await a_session(store, owner)
    for n in range(1, session.total_chunks + 1):
        await store.uploads.record_chunk(session.id, n, NOW)
    return session


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


async def test_a_created_session_reads_back(metadata_store: MetadataStore, owner: User) -> None:
    session = await a_session(metadata_store, owner)

    assert await metadata_store.uploads.get(session.id) == session
    assert await metadata_store.uploads.get("missing") is None


async def test_recording_chunks_is_a_set_and_moves_pending_to_in_progress(
    metadata_store: MetadataStore, owner: User
) -> None:
    session = await a_session(metadata_store, owner)

    first = await metadata_store.uploads.record_chunk(session.id, 2, NOW)
    again = await metadata_store.uploads.record_chunk(session.id, 2, NOW)

    assert first is not None
    assert again is not None
    assert first.status is UploadStatus.IN_PROGRESS
    assert (first.recorded_chunks, again.recorded_chunks) == (1, 1)
    assert again.stored_chunks == 1


async def test_chunks_out_of_range_are_not_recorded(metadata_store: MetadataStore, owner: User) -> None:
    session = await a_session(metadata_store, owner)

    for n in (0, -1, 4):
        result = await metadata_store.uploads.record_chunk(session.id, n, NOW)
        assert result is not None
        assert result.recorded_chunks == 0
    assert await metadata_store.uploads.record_chunk("missing", 1, NOW) is None


async def test_concurrent_records_of_all_chunks_count_each_once(metadata_store: MetadataStore, owner: User) -> None:
    session = await a_session(metadata_store, owner, total=20, size=20_000)

    await asyncio.gather(*(metadata_store.uploads.record_chunk(session.id, n, NOW) for n in [*range(1, 21)] * 3))

    stored = await metadata_store.uploads.get(session.id)
    assert stored is not None
    assert (stored.recorded_chunks, stored.stored_chunks) == (20, 20)


async def test_hashes_and_records_combine_per_chunk(metadata_store: MetadataStore, owner: User) -> None:
    session = await a_session(metadata_store, owner)

    await metadata_store.uploads.save_chunk_hash(session.id, 1, "a" * 64, NOW)
    await metadata_store.uploads.save_chunk_hash(session.id, 1, "b" * 64, NOW)  # first hash wins
    await metadata_store.uploads.record_chunk(session.id, 1, NOW)
    await metadata_store.uploads.record_chunk(session.id, 2, NOW)
    await metadata_store.uploads.save_chunk_hash(session.id, 2, "c" * 64, NOW)

    chunks = await metadata_store.uploads.list_chunks(session.id)
    assert [(c.n, c.sha256, c.recorded) for c in chunks] == [(1, "a" * 64, True), (2, "c" * 64, True)]
    stored = await metadata_store.uploads.get(session.id)
    assert stored is not None
    assert (stored.stored_chunks, stored.recorded_chunks) == (2, 2)


async def test_a_finished_session_records_nothing(metadata_store: MetadataStore, owner: User) -> None:
    session = await a_session(metadata_store, owner)
    await metadata_store.uploads.cancel(session.id, NOW)

    result = await metadata_store.uploads.record_chunk(session.id, 1, NOW)

    assert result is not None
    assert result.status is UploadStatus.CANCELLED
    assert result.recorded_chunks == 0


async def test_only_a_full_session_can_be_claimed_and_only_once(metadata_store: MetadataStore, owner: User) -> None:
    partial = await a_session(metadata_store, owner)
    await metadata_store.uploads.record_chunk(partial.id, 1, NOW)
    full = await full_session(metadata_store, owner)

    assert await metadata_store.uploads.claim_finalize(partial.id, "w1", NOW, NOW + LEASE) is None
    claims = await asyncio.gather(
        *(metadata_store.uploads.claim_finalize(full.id, f"w{i}", NOW, NOW + LEASE) for i in range(8))
    )

    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    assert winners[0].status is UploadStatus.FINALIZING


async def test_a_lapsed_lease_is_taken_over_and_the_old_holder_cannot_complete(
    metadata_store: MetadataStore, owner: User
) -> None:
    session = await full_session(metadata_store, owner)
    assert await metadata_store.uploads.claim_finalize(session.id, "old", NOW, NOW + LEASE) is not None
    assert await metadata_store.uploads.claim_finalize(session.id, "new", NOW + LEASE / 2, NOW + LEASE) is None

    later = NOW + LEASE + timedelta(seconds=1)
    taken = await metadata_store.uploads.claim_finalize(session.id, "new", later, later + LEASE)

    assert taken is not None
    assert taken.lease_owner == "new"
    assert not await metadata_store.uploads.renew_lease(session.id, "old", later + LEASE)
    assert not await metadata_store.uploads.complete(session.id, "old", "file", later)
    assert await metadata_store.uploads.renew_lease(session.id, "new", later + 2 * LEASE)
    assert await metadata_store.uploads.complete(session.id, "new", "file", later)
    completed = await metadata_store.uploads.get(session.id)
    assert completed is not None
    assert (completed.status, completed.file_id, completed.lease_owner) == (UploadStatus.COMPLETED, "file", None)


async def test_cancel_applies_only_to_sessions_taking_chunks(metadata_store: MetadataStore, owner: User) -> None:
    pending = await a_session(metadata_store, owner)
    full = await full_session(metadata_store, owner)
    await metadata_store.uploads.claim_finalize(full.id, "w", NOW, NOW + LEASE)

    cancelled = await metadata_store.uploads.cancel(pending.id, NOW)
    finalizing = await metadata_store.uploads.cancel(full.id, NOW)

    assert cancelled is not None
    assert cancelled.status is UploadStatus.CANCELLED
    assert finalizing is not None
    assert finalizing.status is UploadStatus.FINALIZING
    assert await metadata_store.uploads.cancel("missing", NOW) is None


async def test_due_to_expire_lists_overdue_sessions_that_take_chunks_and_changes_nothing(
    metadata_store: MetadataStore, owner: User
) -> None:
    overdue = await a_session(metadata_store, owner, expires_at=NOW - timedelta(seconds=1))
    sooner = await a_session(metadata_store, owner, expires_at=NOW - timedelta(hours=1))
    current = await a_session(metadata_store, owner)
    cancelled = await a_session(metadata_store, owner, expires_at=NOW - timedelta(seconds=1))
    await metadata_store.uploads.cancel(cancelled.id, NOW)

    due = await metadata_store.uploads.due_to_expire(NOW, 10)
    again = await metadata_store.uploads.due_to_expire(NOW, 10)

    assert [s.id for s in due] == [s.id for s in again] == [sooner.id, overdue.id]
    assert [s.id for s in await metadata_store.uploads.due_to_expire(NOW, 1)] == [sooner.id]
    unchanged = await metadata_store.uploads.get(current.id)
    assert unchanged is not None
    assert unchanged.status is UploadStatus.PENDING


async def test_expire_marks_only_an_overdue_session_that_takes_chunks(
    metadata_store: MetadataStore, owner: User
) -> None:
    overdue = await a_session(metadata_store, owner, expires_at=NOW - timedelta(seconds=1))
    current = await a_session(metadata_store, owner)
    full = await full_session(metadata_store, owner)
    await metadata_store.uploads.claim_finalize(full.id, "w", NOW, NOW + LEASE)

    assert await metadata_store.uploads.expire(overdue.id, NOW)
    assert not await metadata_store.uploads.expire(overdue.id, NOW)  # already expired
    assert not await metadata_store.uploads.expire(current.id, NOW)
    assert not await metadata_store.uploads.expire(full.id, NOW + timedelta(days=2))
    assert not await metadata_store.uploads.expire("missing", NOW)
    for session, status in ((overdue, "expired"), (current, "pending"), (full, "finalizing")):
        stored = await metadata_store.uploads.get(session.id)
        assert stored is not None
        assert stored.status == status


async def test_finished_sessions_need_cleanup_until_marked(metadata_store: MetadataStore, owner: User) -> None:
    session = await a_session(metadata_store, owner)
    await a_session(metadata_store, owner)  # still pending: no cleanup
    await metadata_store.uploads.cancel(session.id, NOW)

    assert [s.id for s in await metadata_store.uploads.needing_cleanup(10)] == [session.id]
    await metadata_store.uploads.mark_cleaned(session.id, NOW)
    assert await metadata_store.uploads.needing_cleanup(10) == []


async def test_stalled_finds_sessions_with_lost_events_full_unclaimed_ones_and_lapsed_leases(
    metadata_store: MetadataStore, owner: User
) -> None:
    uploads = metadata_store.uploads
    lost_event = await a_session(metadata_store, owner)
    await uploads.save_chunk_hash(lost_event.id, 1, "a" * 64, NOW)  # stored, never recorded
    one_chunk_pending = await a_session(metadata_store, owner, total=1, size=10)
    await uploads.save_chunk_hash(one_chunk_pending.id, 1, "b" * 64, NOW)
    full_unclaimed = await full_session(metadata_store, owner)
    all_recorded_partial = await a_session(metadata_store, owner)
    await uploads.record_chunk(all_recorded_partial.id, 1, NOW)  # waiting for more chunks: fine
    busy = await a_session(metadata_store, owner)
    await uploads.save_chunk_hash(busy.id, 1, "c" * 64, NOW + timedelta(minutes=10))
    lapsed = await full_session(metadata_store, owner)
    await uploads.claim_finalize(lapsed.id, "w", NOW, NOW + LEASE)
    held = await full_session(metadata_store, owner)
    later = NOW + timedelta(minutes=10)
    await uploads.claim_finalize(held.id, "w", later, later + LEASE)

    stalled = await uploads.stalled(later, later - timedelta(minutes=5), 10)
    again = await uploads.stalled(later, later - timedelta(minutes=5), 10)

    expected = {lost_event.id, one_chunk_pending.id, full_unclaimed.id, lapsed.id}
    assert {s.id for s in stalled} == expected
    assert {s.id for s in again} == expected  # reading changes nothing
    assert len(await uploads.stalled(later, later - timedelta(minutes=5), 2)) == 2


async def test_claiming_counts_attempts_and_a_released_lease_is_taken_over_at_once(
    metadata_store: MetadataStore, owner: User
) -> None:
    session = await full_session(metadata_store, owner)
    first = await metadata_store.uploads.claim_finalize(session.id, "w1", NOW, NOW + LEASE)
    assert first is not None
    assert first.finalize_attempts == 1

    await metadata_store.uploads.release_lease(session.id, "someone-else", NOW)
    assert await metadata_store.uploads.claim_finalize(session.id, "w2", NOW, NOW + LEASE) is None
    await metadata_store.uploads.release_lease(session.id, "w1", NOW)
    second = await metadata_store.uploads.claim_finalize(session.id, "w2", NOW, NOW + LEASE)

    assert second is not None
    assert (second.lease_owner, second.finalize_attempts) == ("w2", 2)


async def test_only_the_lease_holder_fails_a_session_and_the_reason_is_kept(
    metadata_store: MetadataStore, owner: User
) -> None:
    session = await full_session(metadata_store, owner)
    await metadata_store.uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE)

    assert not await metadata_store.uploads.fail(session.id, "other", "nope", NOW)
    assert await metadata_store.uploads.fail(session.id, "w", "chunk 2 is missing", NOW)
    assert not await metadata_store.uploads.fail(session.id, "w", "again", NOW)

    failed = await metadata_store.uploads.get(session.id)
    assert failed is not None
    assert (failed.status, failed.failure_reason, failed.lease_owner) == (
        UploadStatus.FAILED,
        "chunk 2 is missing",
        None,
    )
    assert [s.id for s in await metadata_store.uploads.needing_cleanup(10)] == [session.id]


async def test_unfinished_sessions_are_listed_newest_first(metadata_store: MetadataStore, owner: User) -> None:
    older = await a_session(metadata_store, owner, size=100, total=1, created_at=NOW - timedelta(minutes=1))
    newer = await a_session(metadata_store, owner, size=200, total=1)
    gone = await a_session(metadata_store, owner, size=400, total=1)
    await metadata_store.uploads.cancel(gone.id, NOW)

    unfinished = await metadata_store.uploads.list_unfinished(owner.id)

    assert [s.id for s in unfinished] == [newer.id, older.id]
    assert await metadata_store.uploads.list_unfinished("nobody") == []


# --- usage and quota -----------------------------------------------------------------------


async def test_usage_counts_unfinished_sessions_until_they_end_without_a_file(
    metadata_store: MetadataStore, owner: User
) -> None:
    uploads = metadata_store.uploads
    cancelled = await a_session(metadata_store, owner, size=100, total=1)
    expired = await a_session(metadata_store, owner, size=200, total=1, expires_at=NOW - timedelta(seconds=1))
    failed = await a_session(metadata_store, owner, size=400, total=1)
    await uploads.record_chunk(failed.id, 1, NOW)
    completed = await a_session(metadata_store, owner, size=800, total=1)
    await uploads.record_chunk(completed.id, 1, NOW)
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


async def test_a_session_that_does_not_fit_the_quota_is_refused_and_not_stored(
    metadata_store: MetadataStore, owner: User
) -> None:
    await a_session(metadata_store, owner, size=6_000, total=6)
    too_big = session_record(owner, total=5, size=4_001)

    with pytest.raises(QuotaExceeded) as raised:
        await metadata_store.uploads.create(too_big, quota=10_000)

    assert (raised.value.used, raised.value.quota) == (6_000, 10_000)
    assert await metadata_store.uploads.get(too_big.id) is None
    assert await metadata_store.uploads.usage(owner.id) == 6_000
    exact = msgspec.structs.replace(too_big, id=uuid.uuid4().hex, file_size=4_000)
    await metadata_store.uploads.create(exact, quota=10_000)
    assert await metadata_store.uploads.usage(owner.id) == 10_000


async def test_concurrent_sessions_against_a_quota_that_fits_one_reserve_exactly_one(
    metadata_store: MetadataStore, owner: User
) -> None:
    sessions = [session_record(owner, total=1, size=700) for _ in range(20)]

    results = await asyncio.gather(
        *(metadata_store.uploads.create(session, quota=1_000) for session in sessions), return_exceptions=True
    )

    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, QuotaExceeded) for r in results if r is not None)
    assert await metadata_store.uploads.usage(owner.id) == 700
    assert len(await metadata_store.uploads.list_unfinished(owner.id)) == 1


async def test_a_file_is_created_once(metadata_store: MetadataStore, owner: User) -> None:
    record = a_file(owner, NOW)

    first = await metadata_store.files.create_if_absent(record)
    second = await metadata_store.files.create_if_absent(
        FileRecord(**{**{f: getattr(record, f) for f in record.__struct_fields__}, "name": "other.bin"})
    )

    assert first == record
    assert second == record
    assert await metadata_store.files.get(record.id) == record


async def test_files_are_listed_newest_first_in_pages(metadata_store: MetadataStore, owner: User) -> None:
    records = [a_file(owner, NOW + timedelta(seconds=i)) for i in range(5)]
    same_time = [a_file(owner, NOW + timedelta(seconds=10)) for _ in range(2)]
    for record in records + same_time:
        await metadata_store.files.create_if_absent(record)

    seen: list[str] = []
    cursor = None
    while True:
        page = await metadata_store.files.list_by_owner(owner.id, 2, cursor)
        seen += [f.id for f in page.files]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor

    expected = [r.id for r in sorted(same_time, key=lambda r: r.id, reverse=True)] + [r.id for r in reversed(records)]
    assert seen == expected
    assert (await metadata_store.files.list_by_owner("nobody", 10, None)).files == []


@pytest.mark.parametrize("cursor", ["not base64!", "bm9wZQ", "WzEsMl0"])
async def test_a_malformed_cursor_is_a_value_error(metadata_store: MetadataStore, owner: User, cursor: str) -> None:
    with pytest.raises(ValueError, match="cursor"):
        await metadata_store.files.list_by_owner(owner.id, 10, cursor)


async def test_only_the_owner_deletes_a_file_and_its_bytes_leave_the_usage(
    metadata_store: MetadataStore, owner: User
) -> None:
    session = await a_session(metadata_store, owner, size=7, total=1)
    await metadata_store.uploads.record_chunk(session.id, 1, NOW)
    await metadata_store.uploads.claim_finalize(session.id, "w", NOW, NOW + LEASE)
    record = await metadata_store.files.create_if_absent(a_file(owner, NOW, size=7))
    await metadata_store.uploads.complete(session.id, "w", record.id, NOW)
    assert await metadata_store.uploads.usage(owner.id) == 7

    assert await metadata_store.files.delete(record.id, "someone-else") is None
    assert await metadata_store.uploads.usage(owner.id) == 7
    assert await metadata_store.files.delete(record.id, owner.id) == record
    assert await metadata_store.files.delete(record.id, owner.id) is None
    assert await metadata_store.files.get(record.id) is None
    assert await metadata_store.uploads.usage(owner.id) == 0
