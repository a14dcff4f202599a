"""Filesystem blob store: chunks under ``uploads/``, finished files under ``files/``.

A chunk is streamed into a temporary file while it is hashed, fsynced, and linked into place, so
``uploads/{id}/chunk_{n}`` exists whole or not at all; the first writer of a chunk wins. Hashing and
writing run in a worker thread (both release the GIL) in blocks of about 1 MiB, overlapping with
receiving the next block.

A finished file ``files/{file_id}`` is a directory holding the verified chunk files moved into it
(``part_000001`` …) and a ``manifest.json`` written last. Assembly therefore costs one rename per
chunk, not a copy of the bytes, and is idempotent: a rerun finishes whatever moves are missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import structlog

from lfusys.storage.ports import (
    ByteRange,
    ChunkConflict,
    ChunkHashMismatch,
    ChunkMissing,
    ChunkSizeMismatch,
    ChunkWrongSize,
    StorageFull,
    UploadRemoved,
)

log = structlog.get_logger(__name__)

_BLOCK = 1024 * 1024
_OUT_OF_SPACE = {errno.ENOSPC, errno.EDQUOT}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CHUNK_NAME = re.compile(r"^chunk_(\d+)$")
_MANIFEST = "manifest.json"

EventSink = Callable[[str], Awaitable[None]]


def chunk_key(upload_id: str, n: int) -> str:
    return f"uploads/{upload_id}/chunk_{n}"


def s3_object_created_event(bucket: str, key: str, size: int, sequencer: int) -> str:
    """The JSON S3 sends to SQS for ``s3:ObjectCreated:Put`` (fields the worker reads, and a few more)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "lfusys:local",
        "awsRegion": "local",
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "sequencer": f"{sequencer:016X}"},
        },
    }
    return json.dumps({"Records": [record]})


def _checked(identifier: str) -> str:
    # Ids are made by the server; refusing anything else keeps every path inside the root.
    if not _SAFE_ID.match(identifier):
        raise ValueError(f"invalid object id {identifier!r}")
    return identifier


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _make_durable(fd: int) -> None:
    os.fsync(fd)
    # Nothing reads a chunk back soon (assembly only renames it), so its pages need not stay cached:
    # dropping them keeps a large upload from evicting the rest of the page cache.
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _ChunkWriter:
    """Writes and hashes blocks of one chunk in a worker thread, one block in flight at a time."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.digest = hashlib.sha256()
        self._in_flight: asyncio.Future[None] | None = None

    def _write(self, block: bytes) -> None:
        self.digest.update(block)
        view = memoryview(block)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    async def submit(self, block: bytes) -> None:
        await self.drain()
        self._in_flight = asyncio.ensure_future(anyio.to_thread.run_sync(self._write, block))

    async def drain(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight


class LocalBlobStore:
    def __init__(self, root: Path, on_object_created: EventSink, bucket: str = "lfusys") -> None:
        self._root = root
        self._uploads = root / "uploads"
        self._files = root / "files"
        self._on_object_created = on_object_created
        self._bucket = bucket
        self._sequencer = 0
        for directory in (self._uploads, self._files):
            directory.mkdir(parents=True, exist_ok=True)

    def _chunk_path(self, upload_id: str, n: int) -> Path:
        return self._uploads / _checked(upload_id) / f"chunk_{int(n)}"

    def _file_dir(self, file_id: str) -> Path:
        return self._files / _checked(file_id)

    # --- chunks ------------------------------------------------------------------------------

    async def put_chunk(self, upload_id: str, n: int, body: AsyncIterator[bytes], size: int, sha256: str) -> bool:
        final = self._chunk_path(upload_id, n)
        try:
            stored = await self._store_chunk(final, body, size, sha256)
        except OSError as exc:
            if exc.errno in _OUT_OF_SPACE:
                raise StorageFull(f"no space left to store chunk {n}") from None
            raise
        # A repeat emits the event again: if the first one was lost, this makes it good.
        await self._emit_object_created(chunk_key(upload_id, n), size)
        return stored

    async def _store_chunk(self, final: Path, body: AsyncIterator[bytes], size: int, sha256: str) -> bool:
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.part")
        await anyio.to_thread.run_sync(lambda: final.parent.mkdir(parents=True, exist_ok=True))
        fd = await anyio.to_thread.run_sync(os.open, temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        writer = _ChunkWriter(fd)
        try:
            received = await self._receive(body, writer, size)
            if received < size:
                raise ChunkSizeMismatch(size, received, too_large=False)
            actual = writer.digest.hexdigest()
            if actual != sha256:
                raise ChunkHashMismatch(actual)
            await anyio.to_thread.run_sync(_make_durable, fd)
            return await anyio.to_thread.run_sync(self._link_into_place, temporary, final, sha256)
        finally:
            with contextlib.suppress(Exception):  # the original error is already on its way up
                await writer.drain()
            os.close(fd)
            await anyio.to_thread.run_sync(lambda: temporary.unlink(missing_ok=True))

    async def _emit_object_created(self, key: str, size: int) -> None:
        self._sequencer += 1
        try:
            await self._on_object_created(s3_object_created_event(self._bucket, key, size, self._sequencer))
        except Exception:
            # The chunk is stored and its hash will be recorded; the janitor's recovery finds it.
            log.exception("storage event could not be queued; recovery will record the chunk", key=key)

    @staticmethod
    async def _receive(body: AsyncIterator[bytes], writer: _ChunkWriter, size: int) -> int:
        received = 0
        pending: list[bytes] = []
        pending_bytes = 0
        async for piece in body:
            received += len(piece)
            if received > size:
                raise ChunkSizeMismatch(size, received, too_large=True)
            pending.append(piece)
            pending_bytes += len(piece)
            if pending_bytes >= _BLOCK:
                await writer.submit(b"".join(pending))
                pending, pending_bytes = [], 0
        if pending:
            await writer.submit(b"".join(pending))
        await writer.drain()
        return received

    @staticmethod
    def _link_into_place(temporary: Path, final: Path, sha256: str) -> bool:
        try:
            os.link(temporary, final)
        except FileNotFoundError:
            # The upload's folder was deleted under us: its session ended while the chunk arrived.
            raise UploadRemoved(f"upload folder {final.parent.name} was removed") from None
        except FileExistsError:
            # Stored before: the same bytes make this a harmless repeat, other bytes a conflict.
            if _hash_file(final) == sha256:
                return False
            raise ChunkConflict(f"chunk {final.name} is already stored with different content") from None
        _fsync_dir(final.parent)
        return True

    async def chunk_sha256(self, upload_id: str, n: int) -> str:
        try:
            return await anyio.to_thread.run_sync(_hash_file, self._chunk_path(upload_id, n))
        except FileNotFoundError:
            raise ChunkMissing(n) from None

    async def delete_chunk(self, upload_id: str, n: int) -> None:
        path = self._chunk_path(upload_id, n)
        await anyio.to_thread.run_sync(lambda: path.unlink(missing_ok=True))

    async def list_chunks(self, upload_id: str) -> list[int]:
        directory = self._uploads / _checked(upload_id)

        def scan() -> list[int]:
            if not directory.is_dir():
                return []
            found = (_CHUNK_NAME.match(entry.name) for entry in os.scandir(directory))
            return sorted(int(match.group(1)) for match in found if match)

        return await anyio.to_thread.run_sync(scan)

    async def delete_upload(self, upload_id: str) -> None:
        directory = self._uploads / _checked(upload_id)
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))

    async def upload_prefixes(self) -> list[str]:
        # Anything else in the folder (lost+found, .DS_Store) is not an upload of ours.
        def scan() -> list[str]:
            return sorted(entry.name for entry in os.scandir(self._uploads) if _SAFE_ID.match(entry.name))

        return await anyio.to_thread.run_sync(scan)

    # --- files -------------------------------------------------------------------------------

    async def assemble(self, upload_id: str, file_id: str, chunk_size: int, file_size: int) -> int:
        return await anyio.to_thread.run_sync(self._assemble, upload_id, file_id, chunk_size, file_size)

    def _assemble(self, upload_id: str, file_id: str, chunk_size: int, file_size: int) -> int:
        directory = self._file_dir(file_id)
        manifest = self._read_manifest(directory)
        if manifest is not None:
            return int(manifest["size"])
        total_chunks = -(-file_size // chunk_size)
        directory.mkdir(parents=True, exist_ok=True)
        for n in range(1, total_chunks + 1):
            source, target = self._chunk_path(upload_id, n), directory / f"part_{n:06d}"
            try:
                os.replace(source, target)
            except FileNotFoundError:
                if not target.exists():
                    raise ChunkMissing(n) from None
        _fsync_dir(directory)
        size = 0
        for n in range(1, total_chunks + 1):
            expected = chunk_size if n < total_chunks else file_size - chunk_size * (total_chunks - 1)
            actual = (directory / f"part_{n:06d}").stat().st_size
            if actual != expected:
                raise ChunkWrongSize(n, expected, actual)
            size += actual
        temporary = directory / f".{_MANIFEST}.tmp"
        temporary.write_text(json.dumps({"size": size, "parts": total_chunks, "part_size": chunk_size}))
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, directory / _MANIFEST)
        _fsync_dir(directory)
        return size

    @staticmethod
    def _read_manifest(directory: Path) -> dict[str, Any] | None:
        try:
            manifest: dict[str, Any] = json.loads((directory / _MANIFEST).read_text())
        except FileNotFoundError:
            return None
        return manifest

    async def file_size(self, file_id: str) -> int | None:
        manifest = await anyio.to_thread.run_sync(self._read_manifest, self._file_dir(file_id))
        return int(manifest["size"]) if manifest else None

    async def read_file(self, file_id: str, byte_range: ByteRange | None) -> AsyncIterator[bytes]:
        directory = self._file_dir(file_id)
        manifest = await anyio.to_thread.run_sync(self._read_manifest, directory)
        if manifest is None:
            raise FileNotFoundError(file_id)
        size, part_size = int(manifest["size"]), int(manifest["part_size"])
        start, end = (byte_range.start, byte_range.end) if byte_range else (0, size - 1)
        position = start
        while position <= end:
            index, offset = divmod(position, part_size)
            length = min(part_size - offset, end - position + 1)
            async for block in _read_part(directory / f"part_{index + 1:06d}", offset, length):
                yield block
            position += length

    async def delete_file(self, file_id: str) -> None:
        directory = self._file_dir(file_id)
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(directory, ignore_errors=True))


async def _read_part(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    handle = await anyio.to_thread.run_sync(path.open, "rb")
    try:
        await anyio.to_thread.run_sync(handle.seek, offset)
        remaining = length
        while remaining > 0:
            block = await anyio.to_thread.run_sync(handle.read, min(_BLOCK, remaining))
            if not block:
                raise OSError(f"{path} is shorter than its manifest says")
            remaining -= len(block)
            yield block
    finally:
        handle.close()
