"""The behaviour every TusStore adapter, and every BlobStore's tus tails, must have: the offset moves only
under a claim, one writer at a time, and a lapsed claim can be taken over."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from msgspec.structs import replace

from lfusys.auth.records import User
from lfusys.storage.ports import Backend, ChunkMissing
from lfusys.tus.records import TusUpload
from tests.contract.test_upload_store import NOW, a_session, a_user

LEASE = timedelta(minutes=2)


@pytest.fixture
async def owner(backend: Backend) -> User:
    return await a_user(backend)


async def a_tus_upload(backend: Backend, owner: User) -> TusUpload:
    session = await a_session(backend, owner)
    upload = TusUpload(
        id=session.id, owner_id=owner.id, length=session.file_size, metadata="filename Zi5iaW4=", created_at=NOW
    )
    await backend.tus.create(upload)
    return upload


async def test_an_upload_is_read_back_as_created_and_only_once(backend: Backend, owner: User) -> None:
    upload = await a_tus_upload(backend, owner)

    assert await backend.tus.get(upload.id) == upload
    assert await backend.tus.get("no-such-upload") is None
    with pytest.raises(ValueError, match="exists"):
        await backend.tus.create(upload)


async def test_the_offset_moves_only_for_the_writer_holding_the_claim(backend: Backend, owner: User) -> None:
    upload = await a_tus_upload(backend, owner)

    claimed = await backend.tus.claim(upload.id, 0, "w1", NOW + LEASE, NOW)
    assert claimed is not None
    assert (claimed.writer, claimed.offset) == ("w1", 0)
    assert await backend.tus.claim(upload.id, 0, "w2", NOW + LEASE, NOW) is None, "one writer at a time"
    assert not await backend.tus.advance(upload.id, "w2", 0, 500, NOW + LEASE), "not the writer"
    assert not await backend.tus.advance(upload.id, "w1", 100, 500, NOW + LEASE), "not the offset"
    assert await backend.tus.advance(upload.id, "w1", 0, 1000, NOW + LEASE)
    assert await backend.tus.advance(upload.id, "w1", 1000, 1700, NOW + LEASE)
    await backend.tus.release(upload.id, "w2")  # not theirs: nothing happens
    assert (await backend.tus.get(upload.id)) == replace(upload, offset=1700, writer="w1", writer_until=NOW + LEASE)

    await backend.tus.release(upload.id, "w1")

    released = await backend.tus.get(upload.id)
    assert released is not None
    assert (released.offset, released.writer, released.writer_until) == (1700, None, None)
    assert await backend.tus.claim(upload.id, 0, "w2", NOW + LEASE, NOW) is None, "the offset moved on"
    assert await backend.tus.claim(upload.id, 1700, "w2", NOW + LEASE, NOW) is not None


async def test_a_lapsed_claim_is_taken_over_and_its_writer_can_no_longer_move_the_offset(
    backend: Backend, owner: User
) -> None:
    upload = await a_tus_upload(backend, owner)
    assert await backend.tus.claim(upload.id, 0, "dead", NOW + LEASE, NOW) is not None

    later = NOW + LEASE + timedelta(seconds=1)
    assert await backend.tus.claim(upload.id, 0, "next", later + LEASE, later) is not None

    assert not await backend.tus.advance(upload.id, "dead", 0, 1000, later + LEASE)
    assert await backend.tus.advance(upload.id, "next", 0, 1000, later + LEASE)


async def test_of_two_claims_at_once_exactly_one_wins(backend: Backend, owner: User) -> None:
    upload = await a_tus_upload(backend, owner)

    results = await asyncio.gather(
        *(backend.tus.claim(upload.id, 0, f"w{i}", NOW + LEASE, NOW) for i in range(8)),
    )

    assert len([claimed for claimed in results if claimed is not None]) == 1


async def test_unknown_uploads_cannot_be_claimed_or_moved(backend: Backend) -> None:
    assert await backend.tus.claim("nope", 0, "w", NOW + LEASE, NOW) is None
    assert not await backend.tus.advance("nope", "w", 0, 1, NOW + LEASE)
    await backend.tus.release("nope", "w")
    await backend.tus.delete("nope")


async def test_deleted_is_gone(backend: Backend, owner: User) -> None:
    upload = await a_tus_upload(backend, owner)

    await backend.tus.delete(upload.id)

    assert await backend.tus.get(upload.id) is None


async def test_tails_are_kept_per_offset_and_go_with_the_upload(backend: Backend, owner: User) -> None:
    upload = await a_tus_upload(backend, owner)
    await backend.blobs.put_tail(upload.id, 300, b"a" * 300)
    await backend.blobs.put_tail(upload.id, 1300, b"b" * 300)

    assert await backend.blobs.get_tail(upload.id, 300) == b"a" * 300
    assert await backend.blobs.get_tail(upload.id, 1300) == b"b" * 300
    assert await backend.blobs.list_chunks(upload.id) == [], "a tail is no chunk"
    await backend.blobs.delete_tail(upload.id, 300)
    await backend.blobs.delete_tail(upload.id, 300)  # again: harmless
    with pytest.raises(ChunkMissing):
        await backend.blobs.get_tail(upload.id, 300)

    await backend.blobs.delete_upload(upload.id)

    with pytest.raises(ChunkMissing):
        await backend.blobs.get_tail(upload.id, 1300)


async def test_a_deferred_upload_gets_its_length_once(backend: Backend, owner: User) -> None:
    session = await a_session(backend, owner)
    upload = TusUpload(id=session.id, owner_id=owner.id, length=5000, deferred=True, created_at=NOW)
    await backend.tus.create(upload)
    assert await backend.tus.get(upload.id) == upload

    assert not await backend.tus.set_length(upload.id, 5001), "more than it reserved"
    assert await backend.tus.get(upload.id) == upload
    assert await backend.tus.set_length(upload.id, 1200)
    assert await backend.tus.get(upload.id) == replace(upload, length=1200, deferred=False)
    assert await backend.tus.set_length(upload.id, 1200), "the same length again"
    assert not await backend.tus.set_length(upload.id, 1100), "a length is given once"
    assert not await backend.tus.set_length("no-such-upload", 10)
    assert await backend.tus.get(upload.id) == replace(upload, length=1200, deferred=False)


async def test_an_upload_with_its_length_cannot_be_given_another(backend: Backend, owner: User) -> None:
    upload = await a_tus_upload(backend, owner)

    assert await backend.tus.set_length(upload.id, upload.length)
    assert not await backend.tus.set_length(upload.id, upload.length - 1)
    assert await backend.tus.get(upload.id) == upload


@pytest.mark.parametrize("concat", ["partial", "final"])
async def test_partial_and_final_uploads_are_read_back_as_such(backend: Backend, owner: User, concat: str) -> None:
    session = await a_session(backend, owner)
    upload = TusUpload(id=session.id, owner_id=owner.id, length=session.file_size, concat=concat, created_at=NOW)
    await backend.tus.create(upload)

    assert await backend.tus.get(upload.id) == upload
