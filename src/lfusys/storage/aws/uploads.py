"""Upload sessions, their chunk records and per-owner usage in DynamoDB.

A session is one item (``sk = "session"``) and each chunk one more item in the same partition
(``sk = "chunk#00042"``), so a session's 10,000 chunk records, each with its SHA-256 and part ETag,
never meet DynamoDB's 400 KB item limit. The session item counts its chunks (``stored_chunks``,
``recorded_chunks``); a chunk's first record and its count change in one transaction whose
conditions say the chunk was not yet counted, so the counts stay exact under any number of workers,
and "every chunk recorded" is the condition ``recorded_chunks = total_chunks`` (the counts exist
from the session's creation, so the condition never meets a missing attribute).

Every status change is one conditional write that also sets or removes the sparse attributes that
put the session into the indexes of :mod:`lfusys.storage.aws.resources` (an owner's unfinished
sessions, the janitor's questions), and, where a session ends without a file, releases its bytes
from the owner's usage in the same transaction. A write that changes the usage by a session's size
(ending it, ``set_size``) is conditional on that size too, so two of them never count one size
differently. Nothing is ever scanned.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import Any

from lfusys.sessions.records import QuotaExceeded, SessionPage, StoredChunk, UploadSession, UploadStatus
from lfusys.storage.aws.clients import AwsClients
from lfusys.storage.aws.dynamo import Expression, Table, TransactionCancelled, expression, stamp, transact, unstamp
from lfusys.storage.aws.resources import FLAG, SESSION_SK, chunk_sk
from lfusys.storage.cursors import decode_cursor, encode_cursor
from lfusys.storage.objects import ChunkStored
from lfusys.storage.ports import Part

_LAST_CHUNK = chunk_sk(99_999)
_AT_ONCE = 16
"""Single-item writes sent at once (part ETags, forgetting them)."""
_SIZE_ATTEMPTS = 3
"""Tries of a write conditional on a session's reserved size before giving up (each failed try saw
the size changed by a concurrent ``set_size``, which only shrinks it)."""

_ACCEPTS = "#status IN (:pending, :in_progress)"
_STATES = {"pending": UploadStatus.PENDING.value, "in_progress": UploadStatus.IN_PROGRESS.value}


def _accepting(text: str = _ACCEPTS, **values: Any) -> Expression:
    """A condition that starts with "the session accepts chunks"."""
    return expression(text, **_STATES, **values)


def _held(worker: str) -> Expression:
    """The condition "``worker`` holds the finalize lease"."""
    return expression(
        "#status = :finalizing AND #lease_owner = :worker", finalizing=UploadStatus.FINALIZING.value, worker=worker
    )


def _reserving(condition: Expression, file_size: int) -> Expression:
    """``condition``, and the session still reserves ``file_size`` bytes (the size a change of its
    reservation was worked out from)."""
    return Expression(
        f"({condition.text}) AND #file_size = :reserved",
        {**condition.names, "#file_size": "file_size"},
        {**condition.values, ":reserved": file_size},
    )


def _session_key(upload_id: str) -> dict[str, str]:
    return {"id": upload_id, "sk": SESSION_SK}


def _chunk_key(upload_id: str, n: int) -> dict[str, str]:
    return {"id": upload_id, "sk": chunk_sk(n)}


def _created_key(session: UploadSession) -> str:
    return f"{stamp(session.created_at)}#{session.id}"


def _session(item: dict[str, Any]) -> UploadSession:
    lease = item.get("lease_expires_at")
    return UploadSession(
        id=item["id"],
        owner_id=item["owner_id"],
        file_name=item["file_name"],
        file_type=item["file_type"],
        file_size=item["file_size"],
        chunk_size=item["chunk_size"],
        total_chunks=item["total_chunks"],
        status=UploadStatus(item["status"]),
        created_at=unstamp(item["created_at"]),
        updated_at=unstamp(item["updated_at"]),
        expires_at=unstamp(item["expires_at"]),
        stored_chunks=item["stored_chunks"],
        recorded_chunks=item["recorded_chunks"],
        file_id=item.get("file_id"),
        lease_owner=item.get("lease_owner"),
        lease_expires_at=unstamp(lease) if lease else None,
        finalize_attempts=item["finalize_attempts"],
        failure_reason=item.get("failure_reason"),
        assembly_id=item.get("assembly_id"),
        sources=tuple(item.get("sources", ())),
    )


def _chunk(item: dict[str, Any]) -> StoredChunk:
    return StoredChunk(
        n=item["n"], sha256=item.get("sha256"), recorded="recorded_at" in item, part_etag=item.get("part_etag")
    )


async def _bounded(writes: Sequence[Awaitable[Any]]) -> None:
    """Await ``writes``, at most :data:`_AT_ONCE` at a time."""
    slots = asyncio.Semaphore(_AT_ONCE)

    async def one(write: Awaitable[Any]) -> None:
        async with slots:
            await write

    await asyncio.gather(*(one(write) for write in writes))


class DynamoUploadStore:
    """The UploadStore port over the ``uploads`` and ``usage`` tables."""

    def __init__(self, clients: AwsClients) -> None:
        self._client = clients.dynamodb
        self._uploads = Table(clients.dynamodb, clients.names.table("uploads"))
        self._usage = Table(clients.dynamodb, clients.names.table("usage"))

    def _release(self, session: UploadSession) -> dict[str, Any]:
        """The transaction item that gives a session's reserved bytes back to its owner."""
        return self._usage.update_item(
            {"owner_id": session.owner_id}, expression("ADD #bytes :change", change=-session.file_size)
        )

    async def _end_without_file(
        self, upload_id: str, status: UploadStatus, now: datetime, condition: Expression, **more: Any
    ) -> bool:
        """Move a session to a status that ends it without a file, if ``condition`` holds, releasing its
        reserved bytes in the same transaction; ``more`` are further attributes to set."""
        assignments = "".join(f", #{name} = :{name}" for name in more)
        update = expression(
            "SET #status = :ended, #updated_at = :now, #cleanup = :flag"
            + assignments
            + " REMOVE #unfinished_owner, #accepting, #finalizing, #lease_owner, #lease_expires_at",
            ended=status.value,
            now=stamp(now),
            flag=FLAG,
            **more,
        )
        tried: int | None = None
        for _ in range(_SIZE_ATTEMPTS):
            session = await self.get(upload_id)
            if session is None or session.file_size == tried:
                return False  # the condition failed, not the size it would release
            tried = session.file_size
            try:
                await transact(
                    self._client,
                    self._uploads.update_item(_session_key(upload_id), update, _reserving(condition, tried)),
                    self._release(session),
                )
            except TransactionCancelled as exc:
                if exc.failed(0):
                    continue  # read again: set_size may have shrunk the reservation meanwhile
                raise
            return True
        raise RuntimeError(f"the size of upload {upload_id} kept changing while it was ended")

    async def create(self, session: UploadSession, quota: int | None) -> None:
        if quota is not None and session.file_size > quota:
            raise QuotaExceeded(await self.usage(session.owner_id), quota)
        item = {
            "id": session.id,
            "sk": SESSION_SK,
            "owner_id": session.owner_id,
            "file_name": session.file_name,
            "file_type": session.file_type,
            "file_size": session.file_size,
            "chunk_size": session.chunk_size,
            "total_chunks": session.total_chunks,
            "status": session.status.value,
            "created_at": stamp(session.created_at),
            "updated_at": stamp(session.updated_at),
            "expires_at": stamp(session.expires_at),
            # Progress, lease and outcome always start afresh, whatever the record handed in says.
            "stored_chunks": 0,
            "recorded_chunks": 0,
            "finalize_attempts": 0,
            "created_key": _created_key(session),
            "unfinished_owner": session.owner_id if not session.status.finished else None,
            "accepting": FLAG if session.status.accepts_chunks else None,
            "sources": list(session.sources) or None,
        }
        reserve = expression("ADD #bytes :size", size=session.file_size)
        room = None
        if quota is not None:
            room = expression("attribute_not_exists(#bytes) OR #bytes <= :room", room=quota - session.file_size)
        try:
            await transact(
                self._client,
                self._uploads.put_item(item, expression("attribute_not_exists(#id)")),
                self._usage.update_item({"owner_id": session.owner_id}, reserve, room),
            )
        except TransactionCancelled as exc:
            if quota is not None and exc.failed(1):
                raise QuotaExceeded(await self.usage(session.owner_id), quota) from None
            if exc.failed(0):
                raise ValueError(f"upload {session.id} exists") from None
            raise

    async def get(self, upload_id: str) -> UploadSession | None:
        item = await self._uploads.get(_session_key(upload_id))
        return _session(item) if item else None

    async def set_size(self, upload_id: str, file_size: int, total_chunks: int) -> UploadSession | None:
        # Conditional on the size it read, so a concurrent change of the size (or of the status) is
        # seen, read again, and the usage shrinks by the difference from the size actually replaced.
        for _ in range(_SIZE_ATTEMPTS):
            session = await self.get(upload_id)
            if session is None or not session.status.accepts_chunks:
                return None
            if file_size > session.file_size:
                raise ValueError(f"upload {upload_id} reserved {session.file_size} bytes, not {file_size}")
            if (file_size, total_chunks) == (session.file_size, session.total_chunks):
                return session
            resize = expression("SET #file_size = :size, #total_chunks = :total", size=file_size, total=total_chunks)
            writes = [
                self._uploads.update_item(_session_key(upload_id), resize, _reserving(_accepting(), session.file_size))
            ]
            if file_size < session.file_size:
                shrink = expression("ADD #bytes :change", change=file_size - session.file_size)
                writes.append(self._usage.update_item({"owner_id": session.owner_id}, shrink))
            try:
                await transact(self._client, *writes)
            except TransactionCancelled as exc:
                if exc.failed(0):
                    continue
                raise
            return await self.get(upload_id)
        raise RuntimeError(f"the size of upload {upload_id} kept changing while it was set")

    async def list_unfinished(self, owner_id: str, limit: int, cursor: str | None) -> SessionPage:
        if cursor is None:
            key = expression("#unfinished_owner = :owner", owner=owner_id)
        else:
            created_at, upload_id = decode_cursor(cursor, 2)
            key = expression(
                "#unfinished_owner = :owner AND #created_key < :after",
                owner=owner_id,
                after=f"{created_at}#{upload_id}",
            )
        items = self._uploads.query(key, index="by-owner", newest_first=True, limit=limit + 1)
        sessions = [_session(item) async for item in items]
        page = sessions[:limit]
        last = page[-1] if len(sessions) > limit else None
        return SessionPage(sessions=page, next_cursor=encode_cursor(stamp(last.created_at), last.id) if last else None)

    async def usage(self, owner_id: str) -> int:
        item = await self._usage.get({"owner_id": owner_id})
        return max(int(item.get("bytes", 0)), 0) if item else 0

    async def save_chunk_hash(self, upload_id: str, n: int, sha256: str, now: datetime) -> UploadSession | None:
        count = expression("SET #updated_at = :now ADD #stored_chunks :one", now=stamp(now), one=1)
        try:
            await transact(
                self._client,
                self._uploads.put_item(
                    {**_chunk_key(upload_id, n), "n": n, "sha256": sha256}, expression("attribute_not_exists(#id)")
                ),
                self._uploads.update_item(
                    _session_key(upload_id), count, _accepting(f"{_ACCEPTS} AND #expires_at > :now", now=stamp(now))
                ),
            )
        except TransactionCancelled as exc:
            if not exc.failed(0) and not exc.failed(1):
                raise
            if exc.failed(0) and not exc.failed(1):
                # Counted already (its event was recorded first, or this is a repeat): the first hash wins.
                await self._uploads.update(
                    _chunk_key(upload_id, n),
                    expression("SET #sha256 = if_not_exists(#sha256, :sha256)", sha256=sha256),
                    expression("attribute_exists(#id)"),
                )
        return await self.get(upload_id)

    async def record_chunks(self, chunks: Sequence[ChunkStored], now: datetime) -> list[UploadSession]:
        for chunk in {chunk.chunk: chunk for chunk in chunks}.values():  # each chunk once
            await self._record_one(chunk, now)
        named = dict.fromkeys(chunk.upload_id for chunk in chunks)
        return [session for upload_id in named if (session := await self.get(upload_id))]

    async def _record_one(self, stored: ChunkStored, now: datetime) -> None:
        if stored.n < 1:
            return  # not one of any session's chunks (the upper bound is the session's, checked below)
        key = _chunk_key(stored.upload_id, stored.n)
        in_range = _accepting(f"{_ACCEPTS} AND #total_chunks >= :n", n=stored.n)
        # A chunk's record goes from absent to hashed to recorded, never back: each retry sees a later state.
        for _ in range(3):
            chunk = await self._uploads.get(key)
            if chunk is not None and "recorded_at" in chunk:
                return
            if chunk is None:
                write = self._uploads.put_item(
                    {**key, "n": stored.n, "recorded_at": stamp(now)}, expression("attribute_not_exists(#id)")
                )
            else:
                write = self._uploads.update_item(
                    key,
                    expression("SET #recorded_at = :now", now=stamp(now)),
                    expression("attribute_exists(#id) AND attribute_not_exists(#recorded_at)"),
                )
            count = expression(
                "SET #status = :recorded_status, #updated_at = :now ADD #recorded_chunks :one, #stored_chunks :stored",
                recorded_status=UploadStatus.IN_PROGRESS.value,
                now=stamp(now),
                one=1,
                stored=int(chunk is None),
            )
            try:
                await transact(
                    self._client, write, self._uploads.update_item(_session_key(stored.upload_id), count, in_range)
                )
                return
            except TransactionCancelled as exc:
                if exc.failed(1):
                    return  # no such session, no longer accepting chunks, or not one of its chunks
                if not exc.failed(0):
                    raise
        raise RuntimeError(f"chunk {stored.n} of upload {stored.upload_id} kept changing while it was recorded")

    async def list_chunks(self, upload_id: str, after: int = 0, limit: int = 1000) -> list[StoredChunk]:
        low = chunk_sk(after + 1)
        if low > _LAST_CHUNK:
            return []
        key = expression("#id = :id AND #sk BETWEEN :low AND :high", id=upload_id, low=low, high=_LAST_CHUNK)
        return [_chunk(item) async for item in self._uploads.query(key, limit=limit)]

    async def claim_finalize(
        self, upload_id: str, worker: str, now: datetime, lease_until: datetime
    ) -> UploadSession | None:
        item = await self._uploads.update(
            _session_key(upload_id),
            expression(
                "SET #status = :finalizing, #lease_owner = :worker, #lease_expires_at = :until, #updated_at = :now,"
                " #finalizing = :flag REMOVE #accepting ADD #finalize_attempts :one",
                finalizing=UploadStatus.FINALIZING.value,
                worker=worker,
                until=stamp(lease_until),
                now=stamp(now),
                flag=FLAG,
                one=1,
            ),
            expression(
                "(#status = :in_progress AND #recorded_chunks = #total_chunks)"
                " OR (#status = :finalizing AND #lease_expires_at < :now)",
                in_progress=UploadStatus.IN_PROGRESS.value,
                finalizing=UploadStatus.FINALIZING.value,
                now=stamp(now),
            ),
        )
        return _session(item) if item else None

    async def renew_lease(self, upload_id: str, worker: str, lease_until: datetime) -> bool:
        update = expression("SET #lease_expires_at = :until", until=stamp(lease_until))
        return await self._uploads.update(_session_key(upload_id), update, _held(worker)) is not None

    async def release_lease(self, upload_id: str, worker: str, now: datetime) -> None:
        # Just before now, so "lease_expires_at < now" holds for the very next claim.
        lapsed = expression("SET #lease_expires_at = :lapsed", lapsed=stamp(now - timedelta(microseconds=1)))
        await self._uploads.update(_session_key(upload_id), lapsed, _held(worker))

    async def set_assembly(self, upload_id: str, worker: str, assembly_id: str | None) -> bool:
        if assembly_id is not None:
            keep = expression("SET #assembly_id = :assembly", assembly=assembly_id)
            return await self._uploads.update(_session_key(upload_id), keep, _held(worker)) is not None
        session = await self.get(upload_id)
        if session is None or session.status is not UploadStatus.FINALIZING or session.lease_owner != worker:
            return False
        # The parts first: should this stop half-way, the assembly is still named and a part whose ETag
        # was forgotten is only copied into it again.
        key = expression("#id = :id AND #sk BETWEEN :low AND :high", id=upload_id, low=chunk_sk(1), high=_LAST_CHUNK)
        copied = [item async for item in self._uploads.query(key, filter_by=expression("attribute_exists(#part_etag)"))]
        forget = expression("REMOVE #part_etag")
        await _bounded([self._uploads.update({"id": upload_id, "sk": item["sk"]}, forget) for item in copied])
        return (
            await self._uploads.update(_session_key(upload_id), expression("REMOVE #assembly_id"), _held(worker))
            is not None
        )

    async def record_parts(self, upload_id: str, parts: list[Part]) -> None:
        exists = expression("attribute_exists(#id)")
        await _bounded(
            [
                self._uploads.update(
                    _chunk_key(upload_id, part.number), expression("SET #part_etag = :etag", etag=part.etag), exists
                )
                for part in parts
            ]
        )

    async def fail(self, upload_id: str, worker: str, reason: str, now: datetime) -> bool:
        return await self._end_without_file(
            upload_id, UploadStatus.FAILED, now, _held(worker), failure_reason=reason, failed=FLAG
        )

    async def complete(self, upload_id: str, worker: str, file_id: str, now: datetime) -> bool:
        update = expression(
            "SET #status = :completed, #file_id = :file_id, #updated_at = :now, #cleanup = :flag"
            " REMOVE #unfinished_owner, #finalizing, #lease_owner, #lease_expires_at",
            completed=UploadStatus.COMPLETED.value,
            file_id=file_id,
            now=stamp(now),
            flag=FLAG,
        )
        return await self._uploads.update(_session_key(upload_id), update, _held(worker)) is not None

    async def cancel(self, upload_id: str, now: datetime) -> UploadSession | None:
        await self._end_without_file(upload_id, UploadStatus.CANCELLED, now, _accepting())
        return await self.get(upload_id)

    async def due_to_expire(self, now: datetime, limit: int) -> list[UploadSession]:
        key = expression("#accepting = :flag AND #expires_at <= :now", flag=FLAG, now=stamp(now))
        return [_session(item) async for item in self._uploads.query(key, index="accepting-by-expiry", limit=limit)]

    async def expire(self, upload_id: str, now: datetime) -> bool:
        due = _accepting(f"{_ACCEPTS} AND #expires_at <= :now", now=stamp(now))
        return await self._end_without_file(upload_id, UploadStatus.EXPIRED, now, due)

    async def needing_cleanup(self, limit: int) -> list[UploadSession]:
        key = expression("#cleanup = :flag", flag=FLAG)
        return [_session(item) async for item in self._uploads.query(key, index="needing-cleanup", limit=limit)]

    async def mark_cleaned(self, upload_id: str, now: datetime) -> None:
        cleaned = expression("SET #cleaned_at = :now REMOVE #cleanup", now=stamp(now))
        await self._uploads.update(_session_key(upload_id), cleaned, expression("attribute_exists(#id)"))

    async def stalled(self, now: datetime, idle_since: datetime, limit: int) -> list[UploadSession]:
        # Of the sessions idle since then, those with unrecorded chunks or with every chunk: the index holds
        # every idle session, the filter keeps these (read a page at a time, never the whole table).
        idle_key = expression("#accepting = :flag AND #updated_at < :idle", flag=FLAG, idle=stamp(idle_since))
        moving = expression("#stored_chunks > #recorded_chunks OR #recorded_chunks = #total_chunks")
        idle = self._uploads.query(idle_key, index="accepting-by-change", limit=limit, page_size=100, filter_by=moving)
        found = [_session(item) async for item in idle]
        lapsed_key = expression("#finalizing = :flag AND #lease_expires_at < :now", flag=FLAG, now=stamp(now))
        if len(found) < limit:
            lapsed = self._uploads.query(lapsed_key, index="finalizing-by-lease", limit=limit - len(found))
            found += [_session(item) async for item in lapsed]
        return found

    async def by_status(self, status: UploadStatus, limit: int) -> list[UploadSession]:
        if status is UploadStatus.FAILED:
            key, index = expression("#failed = :flag", flag=FLAG), "failed-by-time"
        elif status is UploadStatus.FINALIZING:
            key, index = expression("#finalizing = :flag", flag=FLAG), "finalizing-by-lease"
        else:
            raise ValueError(f"sessions are not listed by status {status.value}")
        return [_session(item) async for item in self._uploads.query(key, index=index, limit=limit)]
