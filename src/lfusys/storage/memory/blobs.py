"""Chunk and file bytes in this process's memory, with the behaviour of the filesystem blob store.

A chunk is received into a buffer while it is hashed and stored only whole and verified; the first
writer of a chunk wins. Assembly follows the S3 multipart shape: an assembly holds its parts (a
chunk's bytes shared, not copied; several pieces joined) until it is completed into a file (its parts
in order) or aborted.
Each step that looks and then changes does so without awaiting in between, so on the one event loop
it is atomic.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
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
    UploadRemoved,
    copy_as_one_part,
)

log = structlog.get_logger(__name__)

_BLOCK = 1024 * 1024
_BUCKET = "lfusys"

EventSink = Callable[[str], Awaitable[None]]


class _Blob(msgspec.Struct, frozen=True):
    data: bytes
    sha256: str
    """Lower-case hex; also a part's ETag."""


@dataclass(slots=True, eq=False)
class _Upload:
    """The chunks and tus tails under one upload's prefix, and how many puts into it are still arriving."""

    chunks: dict[int, _Blob] = field(default_factory=dict)
    tails: dict[int, bytes] = field(default_factory=dict)
    arriving: int = 0


async def _receive(body: AsyncIterator[bytes], size: int, sha256: str, *, check: bool = True) -> bytes:
    """The whole body, if it is exactly ``size`` bytes with SHA-256 ``sha256`` (not hashed unless ``check``)."""
    digest = hashlib.sha256() if check else None
    buffer = bytearray()
    async for piece in body:
        received = len(buffer) + len(piece)
        if received > size:
            raise ChunkSizeMismatch(size, received, too_large=True)
        if digest is not None:
            digest.update(piece)
        buffer += piece
    if len(buffer) < size:
        raise ChunkSizeMismatch(size, len(buffer), too_large=False)
    if digest is not None and (actual := digest.hexdigest()) != sha256:
        raise ChunkHashMismatch(actual)
    return bytes(buffer)


class MemoryBlobStore:
    """The BlobStore port over dicts: chunks by upload and number, assemblies' parts, files as parts."""

    def __init__(self, on_object_created: EventSink, links: SignedLinks) -> None:
        self._on_object_created = on_object_created
        self._links = links
        self._sequencer = 0
        self._uploads: dict[str, _Upload] = {}
        self._assemblies: dict[tuple[str, str], dict[int, _Blob]] = {}
        self._files: dict[str, tuple[bytes, ...]] = {}  # each file as its parts' bytes, in order

    def _forget_if_unused(self, upload_id: str, upload: _Upload) -> None:
        """Drop an upload's entry once it holds no chunk and no put is arriving, so memory stays bounded."""
        if not upload.chunks and not upload.tails and not upload.arriving and self._uploads.get(upload_id) is upload:
            del self._uploads[upload_id]

    # --- chunks ------------------------------------------------------------------------------

    async def put_chunk(
        self, upload_id: str, n: int, body: AsyncIterator[bytes], size: int, sha256: str, *, digest_known: bool = False
    ) -> bool:
        key = chunk_key(checked_id(upload_id), n)
        # The entry stands for the upload's prefix: if delete_upload drops it while the body arrives,
        # the chunk must not be stored into a new one.
        upload = self._uploads.setdefault(upload_id, _Upload())
        upload.arriving += 1
        try:
            data = await _receive(body, size, sha256, check=not digest_known)
            stored = self._commit(upload_id, upload, n, _Blob(data, sha256))
        finally:
            upload.arriving -= 1
            self._forget_if_unused(upload_id, upload)
        # A repeat emits the event again: if the first one was lost, this makes it good.
        await self._emit_object_created(key, size)
        return stored

    def _commit(self, upload_id: str, upload: _Upload, n: int, blob: _Blob) -> bool:
        if self._uploads.get(upload_id) is not upload:
            raise UploadRemoved(f"the chunks of upload {upload_id} were deleted while chunk {n} arrived")
        existing = upload.chunks.get(n)
        if existing is None:
            upload.chunks[n] = blob
            return True
        # Stored before: the same bytes make this a harmless repeat, other bytes a conflict.
        if existing.sha256 == blob.sha256:
            return False
        raise ChunkConflict(f"chunk {n} of upload {upload_id} is already stored with different content")

    async def _emit_object_created(self, key: str, size: int) -> None:
        self._sequencer += 1
        try:
            await self._on_object_created(
                object_created_event(_BUCKET, key, size, self._sequencer, current_traceparent())
            )
        except Exception:
            # The chunk is stored and its hash will be recorded; the janitor's recovery finds it.
            log.exception("storage event could not be queued; recovery will record the chunk", key=key)

    async def chunk_sha256(self, upload_id: str, n: int) -> str:
        upload = self._uploads.get(checked_id(upload_id))
        chunk = upload.chunks.get(n) if upload else None
        if chunk is None:
            raise ChunkMissing(n)
        return chunk.sha256

    async def chunk_traceparent(self, upload_id: str, n: int) -> None:
        return None  # the storage event carries it

    async def list_chunks(self, upload_id: str) -> list[int]:
        upload = self._uploads.get(checked_id(upload_id))
        return sorted(upload.chunks) if upload else []

    async def delete_chunk(self, upload_id: str, n: int) -> None:
        upload = self._uploads.get(checked_id(upload_id))
        if upload is not None:
            upload.chunks.pop(n, None)
            self._forget_if_unused(upload_id, upload)

    async def delete_upload(self, upload_id: str) -> None:
        self._uploads.pop(checked_id(upload_id), None)

    async def put_tail(self, upload_id: str, offset: int, data: bytes) -> None:
        self._uploads.setdefault(checked_id(upload_id), _Upload()).tails[offset] = bytes(data)

    async def get_tail(self, upload_id: str, offset: int) -> bytes:
        upload = self._uploads.get(checked_id(upload_id))
        tail = upload.tails.get(offset) if upload else None
        if tail is None:
            raise ChunkMissing(0)
        return tail

    async def delete_tail(self, upload_id: str, offset: int) -> None:
        upload = self._uploads.get(checked_id(upload_id))
        if upload is not None:
            upload.tails.pop(offset, None)
            self._forget_if_unused(upload_id, upload)

    # --- assembly ----------------------------------------------------------------------------

    async def start_assembly(self, file_id: str) -> str:
        assembly_id = secrets.token_hex(8)
        self._assemblies[(checked_id(file_id), assembly_id)] = {}
        return assembly_id

    async def copy_parts(self, file_id: str, assembly_id: str, upload_id: str, chunks: list[ChunkSpan]) -> list[Part]:
        parts = [PartSource(span.n, (Piece(upload_id, span.size, n=span.n),)) for span in chunks]
        return await self.copy_pieces(file_id, assembly_id, parts)

    async def copy_pieces(self, file_id: str, assembly_id: str, parts: list[PartSource]) -> list[Part]:
        kept = self._assemblies.get((checked_id(file_id), checked_id(assembly_id)))
        if kept is None:
            raise AssemblyLost(f"no assembly {assembly_id} of file {file_id}")
        made: list[Part] = []
        for source in parts:
            part = kept.get(source.number)
            if part is None or len(part.data) != source.size:  # otherwise made before: a repeat
                kept[source.number] = part = self._joined(source.pieces)
            made.append(Part(source.number, part.sha256))
        return made

    def _joined(self, pieces: tuple[Piece, ...]) -> _Blob:
        """A part of ``pieces``: a lone one shared as it is, several joined."""
        blobs = [self._piece(piece) for piece in pieces]
        if len(blobs) == 1:
            return blobs[0]
        data = b"".join(blob.data for blob in blobs)
        return _Blob(data, hashlib.sha256(data).hexdigest())

    def _piece(self, piece: Piece) -> _Blob:
        upload = self._uploads.get(checked_id(piece.upload_id))
        if piece.n:
            blob = upload.chunks.get(piece.n) if upload else None
        else:
            tail = upload.tails.get(piece.tail_end) if upload else None
            blob = _Blob(tail, hashlib.sha256(tail).hexdigest()) if tail is not None else None
        if blob is None:
            raise ChunkMissing(piece.n)
        if len(blob.data) != piece.size:
            raise ChunkWrongSize(piece.n, piece.size, len(blob.data))
        return blob

    async def complete_assembly(self, file_id: str, assembly_id: str, parts: list[Part]) -> int:
        key = (checked_id(file_id), checked_id(assembly_id))
        complete = self._files.get(file_id)
        if complete is not None:
            return sum(map(len, complete))
        kept = self._assemblies.get(key)
        if kept is None:
            raise AssemblyLost(f"no assembly {assembly_id} of file {file_id}")
        joined: list[bytes] = []
        for number, part in enumerate(parts, start=1):
            stored = kept.get(part.number)
            if part.number != number or stored is None or stored.sha256 != part.etag:
                raise AssemblyLost(f"part {part.number} of assembly {assembly_id} is not the recorded one")
            joined.append(stored.data)
        del self._assemblies[key]
        self._files[file_id] = tuple(joined)
        return sum(map(len, joined))

    async def copy_chunk_as_file(self, file_id: str, upload_id: str, chunk: ChunkSpan) -> int:
        return await copy_as_one_part(self, file_id, upload_id, chunk)

    async def abort_assembly(self, file_id: str, assembly_id: str) -> None:
        self._assemblies.pop((checked_id(file_id), checked_id(assembly_id)), None)

    # --- files -------------------------------------------------------------------------------

    async def file_size(self, file_id: str) -> int | None:
        parts = self._files.get(checked_id(file_id))
        return sum(map(len, parts)) if parts is not None else None

    async def read_file(self, file_id: str, byte_range: ByteRange | None) -> AsyncIterator[bytes]:
        parts = self._files.get(checked_id(file_id))
        if parts is None:
            raise FileNotFoundError(file_id)
        start, end = (byte_range.start, byte_range.end) if byte_range else (0, sum(map(len, parts)) - 1)
        offset = 0  # where the current part begins in the file
        for part in parts:
            if offset > end:
                break
            low, high = max(start - offset, 0), min(end + 1 - offset, len(part))
            for position in range(low, high, _BLOCK):
                yield part[position : min(position + _BLOCK, high)]
            offset += len(part)

    async def download_url(self, file_id: str, file_name: str, file_type: str, expires_at: datetime) -> str:
        # The content route reads name and type from the file's record.
        return self._links.url(checked_id(file_id), expires_at)

    async def delete_file(self, file_id: str) -> None:
        self._files.pop(checked_id(file_id), None)
