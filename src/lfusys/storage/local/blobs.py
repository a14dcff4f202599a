"""Filesystem blob store: chunks under ``uploads/``, assemblies under ``assembling/``, files under ``files/``.

A chunk is streamed into a temporary file while it is hashed, fsynced, and linked into place, so
``uploads/{id}/chunk_{n}`` exists whole or not at all; the first writer of a chunk wins. Hashing and
writing run in a worker thread (both release the GIL) in blocks of about 1 MiB, overlapping with
receiving the next block; the rest of a chunk's file work is one hand-off to a thread before the
body and one after it. A slow body does not sit in memory until a block is full: what has waited
for ``_HOLD_AT_MOST`` goes to the thread with the next piece, so a trickling upload holds a piece or
two, and a fast one still gets whole blocks.

Assembly follows the S3 multipart shape: an assembly is a folder ``assembling/{file_id}.{id}``; a
part is a hard link to the verified chunk (or tail) file (no bytes are copied, and the chunk stays
where it is until the upload's chunks are deleted), or a new file of several pieces' bytes joined;
completing writes a ``manifest.json`` and renames the folder to ``files/{file_id}`` in one step. A
finished file is therefore a folder of parts; its manifest keeps one ``part_size`` when every part but
a shorter last has that size, and the size of each part but the last (``part_sizes``) otherwise.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ctypes
import errno
import functools
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Executor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog

from lfusys.files.ranges import ByteRange
from lfusys.files.signing import SignedLinks
from lfusys.observability.tracing import current_traceparent
from lfusys.storage.objects import checked_id, chunk_key, object_created_event
from lfusys.storage.ports import (
    AssemblyLost,
    ChunkConflict,
    ChunkHashMismatch,
    ChunkMissing,
    ChunkSizeMismatch,
    ChunkSpan,
    ChunkWrongSize,
    Part,
    PartSource,
    Piece,
    StorageFull,
    UploadRemoved,
    copy_as_one_part,
)

log = structlog.get_logger(__name__)

_BLOCK = 1024 * 1024
_HOLD_AT_MOST = 0.02
"""Seconds received bytes may wait for their block to fill before they are written anyway."""
_MAX_WRITEV = 512
_OUT_OF_SPACE = {errno.ENOSPC, errno.EDQUOT}
_CHUNK_NAME = re.compile(r"^chunk_(\d+)$")
_MANIFEST = "manifest.json"

EventSink = Callable[[str], Awaitable[None]]
T = TypeVar("T")


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


_SYNC_FILE_RANGE = getattr(ctypes.CDLL(None, use_errno=True), "sync_file_range", None)  # Linux only
_SYNC_FILE_RANGE_WRITE = 2
_WRITEBACK_EVERY = 4 * 1024 * 1024


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``: queue these dirty pages for writing, without
    waiting and without dropping them (the os module does not offer it; elsewhere this does nothing)."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, ctypes.c_int64(offset), ctypes.c_int64(length), _SYNC_FILE_RANGE_WRITE)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _part_name(n: int) -> str:
    return f"part_{n:06d}"


class _ChunkWriter:
    """Writes and hashes blocks of one chunk in a worker thread, one block in flight at a time.

    A block is the list of body pieces as they arrived: hashed piece by piece and written with one
    ``writev``, so the bytes are never copied into one buffer first.
    """

    def __init__(self, fd: int, executor: Executor | None, *, hashing: bool = True) -> None:
        self.fd = fd
        self.executor = executor
        self.written = 0
        self.queued = 0
        self.digest = hashlib.sha256() if hashing else None
        """The SHA-256 of what was written, unless the caller knows it already."""
        self._in_flight: asyncio.Future[None] | None = None

    def _write(self, pieces: list[bytes]) -> None:
        if self.digest is not None:
            for piece in pieces:
                self.digest.update(piece)
        self.written += sum(len(piece) for piece in pieces)
        views = [memoryview(piece) for piece in pieces]
        while views:
            # A slow client's tiny pieces may outnumber what one writev takes (IOV_MAX, 1024 here).
            written = os.writev(self.fd, views[:_MAX_WRITEV])
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if views and written:
                views[0] = views[0][written:]
        # Start writing what is written to disk every few MiB, so the chunk's final fsync has little left
        # to wait for.
        if self.written - self.queued >= _WRITEBACK_EVERY:
            _start_writeback(self.fd, self.queued, self.written - self.queued)
            self.queued = self.written

    async def submit(self, pieces: list[bytes]) -> None:
        await self.drain()
        self._in_flight = asyncio.get_running_loop().run_in_executor(self.executor, self._write, pieces)

    async def drain(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            await in_flight


class LocalBlobStore:
    def __init__(
        self,
        root: Path,
        on_object_created: EventSink,
        links: SignedLinks,
        executor: Executor | None = None,
        bucket: str = "lfusys",
    ) -> None:
        self._executor = executor
        self._uploads = root / "uploads"
        self._assembling = root / "assembling"
        self._files = root / "files"
        self._on_object_created = on_object_created
        self._links = links
        self._bucket = bucket
        self._sequencer = 0
        for directory in (self._uploads, self._assembling, self._files):
            directory.mkdir(parents=True, exist_ok=True)

    def _in_thread(self, function: Callable[..., T], *args: Any) -> Awaitable[T]:
        """Run blocking file work off the event loop (plain executor: cheaper per call than anyio's)."""
        return asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args))

    def _chunk_path(self, upload_id: str, n: int) -> Path:
        return self._uploads / checked_id(upload_id) / f"chunk_{int(n)}"

    def _file_dir(self, file_id: str) -> Path:
        return self._files / checked_id(file_id)

    def _assembly_dir(self, file_id: str, assembly_id: str) -> Path:
        return self._assembling / f"{checked_id(file_id)}.{checked_id(assembly_id)}"

    # --- chunks ------------------------------------------------------------------------------

    async def put_chunk(
        self, upload_id: str, n: int, body: AsyncIterator[bytes], size: int, sha256: str, *, digest_known: bool = False
    ) -> bool:
        final = self._chunk_path(upload_id, n)
        try:
            stored = await self._store_chunk(final, body, size, sha256, digest_known)
        except OSError as exc:
            if exc.errno in _OUT_OF_SPACE:
                raise StorageFull(f"no space left to store chunk {n}") from None
            raise
        # A repeat emits the event again: if the first one was lost, this makes it good. As with S3, a
        # chunk acknowledged has its event queued durably: a crash right after the answer loses nothing
        # (queued beside the answer instead, such an upload waited for the janitor's stalled sweep).
        self._sequencer += 1
        await self._emit_object_created(chunk_key(upload_id, n), size, self._sequencer, current_traceparent())
        return stored

    async def _store_chunk(
        self, final: Path, body: AsyncIterator[bytes], size: int, sha256: str, digest_known: bool
    ) -> bool:
        temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.part")
        fd = await self._in_thread(_open_temporary, temporary)
        writer = _ChunkWriter(fd, self._executor, hashing=not digest_known)
        committed = False
        try:
            received = await self._receive(body, writer, size)
            if received < size:
                raise ChunkSizeMismatch(size, received, too_large=False)
            if writer.digest is not None and (actual := writer.digest.hexdigest()) != sha256:
                raise ChunkHashMismatch(actual)
            committed = True
            return await self._in_thread(_commit_chunk, fd, temporary, final, sha256)
        finally:
            if not committed:
                with contextlib.suppress(Exception):  # the original error is already on its way up
                    await writer.drain()
                await self._in_thread(_discard_temporary, fd, temporary)

    async def _emit_object_created(self, key: str, size: int, sequencer: int, traceparent: str | None) -> None:
        try:
            await self._on_object_created(object_created_event(self._bucket, key, size, sequencer, traceparent))
        except Exception:
            # The chunk is stored and its hash will be recorded; the janitor's recovery finds it.
            log.exception("storage event could not be queued; recovery will record the chunk", key=key)

    @staticmethod
    async def _receive(body: AsyncIterator[bytes], writer: _ChunkWriter, size: int) -> int:
        received = 0
        pending: list[bytes] = []
        pending_bytes = 0
        pending_since = 0.0
        async for piece in body:
            received += len(piece)
            if received > size:
                raise ChunkSizeMismatch(size, received, too_large=True)
            now = time.monotonic()
            if not pending:
                pending_since = now
            pending.append(piece)
            pending_bytes += len(piece)
            if pending_bytes >= _BLOCK or now - pending_since >= _HOLD_AT_MOST:
                await writer.submit(pending)
                pending, pending_bytes = [], 0
        if pending:
            await writer.submit(pending)
        await writer.drain()
        return received

    async def chunk_sha256(self, upload_id: str, n: int) -> str:
        try:
            return await self._in_thread(_hash_file, self._chunk_path(upload_id, n))
        except FileNotFoundError:
            raise ChunkMissing(n) from None

    async def chunk_traceparent(self, upload_id: str, n: int) -> None:
        return None  # the storage event carries it

    async def list_chunks(self, upload_id: str) -> list[int]:
        directory = self._uploads / checked_id(upload_id)

        def scan() -> list[int]:
            if not directory.is_dir():
                return []
            found = (_CHUNK_NAME.match(entry.name) for entry in os.scandir(directory))
            return sorted(int(match.group(1)) for match in found if match)

        return await self._in_thread(scan)

    async def delete_chunk(self, upload_id: str, n: int) -> None:
        path = self._chunk_path(upload_id, n)
        await self._in_thread(lambda: path.unlink(missing_ok=True))

    async def delete_upload(self, upload_id: str) -> None:
        directory = self._uploads / checked_id(upload_id)
        await self._in_thread(lambda: shutil.rmtree(directory, ignore_errors=True))

    # --- tus tails --------------------------------------------------------------------------

    def _tail_path(self, upload_id: str, offset: int) -> Path:
        return self._uploads / checked_id(upload_id) / f"tail_{int(offset)}"

    async def put_tail(self, upload_id: str, offset: int, data: bytes) -> None:
        try:
            await self._in_thread(_write_durably, self._tail_path(upload_id, offset), [data])
        except OSError as exc:
            if exc.errno in _OUT_OF_SPACE:
                raise StorageFull(f"no space left to store the bytes up to offset {offset}") from None
            raise

    async def get_tail(self, upload_id: str, offset: int) -> bytes:
        try:
            return await self._in_thread(self._tail_path(upload_id, offset).read_bytes)
        except FileNotFoundError:
            raise ChunkMissing(0) from None

    async def delete_tail(self, upload_id: str, offset: int) -> None:
        await self._in_thread(self._tail_path(upload_id, offset).unlink, True)

    # --- assembly ----------------------------------------------------------------------------

    async def start_assembly(self, file_id: str) -> str:
        assembly_id = secrets.token_hex(8)
        directory = self._assembly_dir(file_id, assembly_id)
        await self._in_thread(directory.mkdir)
        return assembly_id

    async def copy_parts(self, file_id: str, assembly_id: str, upload_id: str, chunks: list[ChunkSpan]) -> list[Part]:
        assembly = self._assembly_dir(file_id, assembly_id)
        sources = [(self._chunk_path(upload_id, chunk.n), chunk) for chunk in chunks]
        # Links are cheap: all of them in one hand-off to a thread.
        return await self._in_thread(
            lambda: [
                Part(chunk.n, _link_part(source, assembly / _part_name(chunk.n), chunk.n, chunk.size))
                for source, chunk in sources
            ]
        )

    async def copy_pieces(self, file_id: str, assembly_id: str, parts: list[PartSource]) -> list[Part]:
        assembly = self._assembly_dir(file_id, assembly_id)
        made: list[Part] = []
        for part in parts:
            sources = [(self._piece_path(piece), piece) for piece in part.pieces]
            etag = await self._in_thread(_make_part, sources, assembly / _part_name(part.number), part.size)
            made.append(Part(part.number, etag))
        return made

    def _piece_path(self, piece: Piece) -> Path:
        if piece.n:
            return self._chunk_path(piece.upload_id, piece.n)
        return self._tail_path(piece.upload_id, piece.tail_end)

    async def complete_assembly(self, file_id: str, assembly_id: str, parts: list[Part]) -> int:
        return await self._in_thread(
            self._complete, self._assembly_dir(file_id, assembly_id), self._file_dir(file_id), parts
        )

    def _complete(self, assembly: Path, final: Path, parts: list[Part]) -> int:
        manifest = _read_manifest(final)
        if manifest is not None:
            return int(manifest["size"])
        if not assembly.is_dir():
            raise AssemblyLost(f"no assembly at {assembly.name}")
        sizes = []
        for number, part in enumerate(parts, start=1):
            path = assembly / _part_name(part.number)
            if part.number != number or not path.exists() or _part_etag(path) != part.etag:
                raise AssemblyLost(f"part {part.number} of {assembly.name} is not the recorded one")
            sizes.append(path.stat().st_size)
        temporary = assembly / f".{_MANIFEST}.tmp"
        temporary.write_text(json.dumps(_manifest(sizes)))
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, assembly / _MANIFEST)
        _fsync_dir(assembly)
        os.rename(assembly, final)
        _fsync_dir(final.parent)
        return sum(sizes)

    async def copy_chunk_as_file(self, file_id: str, upload_id: str, chunk: ChunkSpan) -> int:
        return await copy_as_one_part(self, file_id, upload_id, chunk)

    async def abort_assembly(self, file_id: str, assembly_id: str) -> None:
        directory = self._assembly_dir(file_id, assembly_id)
        await self._in_thread(lambda: shutil.rmtree(directory, ignore_errors=True))

    # --- files -------------------------------------------------------------------------------

    async def file_size(self, file_id: str) -> int | None:
        manifest = await self._in_thread(_read_manifest, self._file_dir(file_id))
        return int(manifest["size"]) if manifest else None

    async def read_file(self, file_id: str, byte_range: ByteRange | None) -> AsyncIterator[bytes]:
        directory = self._file_dir(file_id)
        manifest = await self._in_thread(_read_manifest, directory)
        if manifest is None:
            raise FileNotFoundError(file_id)
        ends = _part_ends(manifest)
        start, end = (byte_range.start, byte_range.end) if byte_range else (0, int(manifest["size"]) - 1)
        position = start
        while position <= end:
            index = bisect.bisect_right(ends, position)
            offset = position - (ends[index - 1] if index else 0)
            length = min(ends[index], end + 1) - position
            async for block in self._read_part(directory / _part_name(index + 1), offset, length):
                yield block
            position += length

    async def download_url(self, file_id: str, file_name: str, file_type: str, expires_at: datetime) -> str:
        # The content route reads name and type from the file's record.
        return self._links.url(checked_id(file_id), expires_at)

    async def delete_file(self, file_id: str) -> None:
        directory = self._file_dir(file_id)
        await self._in_thread(lambda: shutil.rmtree(directory, ignore_errors=True))

    async def _read_part(self, path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
        handle = await self._in_thread(lambda: path.open("rb"))
        try:
            await self._in_thread(handle.seek, offset)
            remaining = length
            while remaining > 0:
                block = await self._in_thread(handle.read, min(_BLOCK, remaining))
                if not block:
                    raise OSError(f"{path} is shorter than its manifest says")
                remaining -= len(block)
                yield block
        finally:
            handle.close()


# --- the file work of one chunk, each step one hand-off to a thread ------------------------------------


def _open_temporary(temporary: Path) -> int:
    temporary.parent.mkdir(parents=True, exist_ok=True)
    return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _commit_chunk(fd: int, temporary: Path, final: Path, sha256: str) -> bool:
    """Make the written chunk durable and link it into place (first writer wins); drop the temporary."""
    try:
        os.fsync(fd)
        # Nothing reads a chunk back soon (assembly only links it), so its pages need not stay
        # cached: dropping them keeps a large upload from evicting the rest of the page cache.
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
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
    finally:
        _discard_temporary(fd, temporary)


def _write_durably(final: Path, blocks: Iterable[bytes]) -> None:
    """Write ``final`` from ``blocks`` whole or not at all: a temporary beside it, fsynced, renamed into place."""
    temporary = final.with_name(f".{final.name}.{secrets.token_hex(6)}.part")
    fd = _open_temporary(temporary)
    try:
        for block in blocks:
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    _fsync_dir(final.parent)


def _discard_temporary(fd: int, temporary: Path) -> None:
    os.close(fd)
    temporary.unlink(missing_ok=True)


def _part_etag(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_ino:x}-{stat.st_size:x}"


def _link_part(source: Path, target: Path, n: int, size: int) -> str:
    """Link ``source`` (chunk ``n``, or a tail if 0, of ``size`` bytes) in as the part ``target``; its ETag."""
    if not target.parent.is_dir():
        raise AssemblyLost(f"no assembly at {target.parent.name}")
    if not target.exists():  # otherwise copied before: a repeat
        try:
            os.link(source, target)
        except FileExistsError:
            pass
        except FileNotFoundError:
            raise ChunkMissing(n) from None
    actual = target.stat().st_size
    if actual != size:
        raise ChunkWrongSize(n, size, actual)
    return _part_etag(target)


def _make_part(sources: list[tuple[Path, Piece]], target: Path, size: int) -> str:
    """Make the part ``target`` of ``size`` bytes from its pieces (each with its file); its ETag. One piece
    is linked; several are joined into a new file, unless one of that size is there from before."""
    if len(sources) == 1:
        ((source, piece),) = sources
        return _link_part(source, target, piece.n, piece.size)
    if not target.parent.is_dir():
        raise AssemblyLost(f"no assembly at {target.parent.name}")
    with contextlib.suppress(FileNotFoundError):
        if target.stat().st_size == size:
            return _part_etag(target)
    _write_durably(target, _blocks_of(sources))
    return _part_etag(target)


def _blocks_of(sources: list[tuple[Path, Piece]]) -> Iterator[bytes]:
    """The bytes of each piece in turn, in blocks, once its file is known to have the piece's length."""
    for path, piece in sources:
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ChunkMissing(piece.n) from None
        with handle:
            actual = os.fstat(handle.fileno()).st_size
            if actual != piece.size:
                raise ChunkWrongSize(piece.n, piece.size, actual)
            while block := handle.read(_BLOCK):
                yield block


def _manifest(sizes: list[int]) -> dict[str, Any]:
    """A file of parts with ``sizes``: one ``part_size`` when every part but a shorter last has it."""
    leading = sizes[:-1]
    part_size = sizes[0] if sizes else 0
    if all(size == part_size for size in leading) and (not sizes or sizes[-1] <= part_size):
        return {"size": sum(sizes), "parts": len(sizes), "part_size": part_size}
    return {"size": sum(sizes), "parts": len(sizes), "part_sizes": leading}


def _part_ends(manifest: dict[str, Any]) -> list[int]:
    """Where each part of a file ends (the next begins), from its manifest."""
    if "part_sizes" in manifest:
        leading = [int(size) for size in manifest["part_sizes"]]
    else:
        leading = [int(manifest["part_size"])] * (int(manifest["parts"]) - 1)
    return [*itertools.accumulate(leading), int(manifest["size"])]


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((directory / _MANIFEST).read_text())
    except FileNotFoundError:
        return None
    return manifest
