"""Chunk and file objects in S3: ``uploads/{upload_id}/chunk_{n}`` and ``files/{file_id}``, in one bucket.

A chunk is streamed straight into a conditional ``PutObject`` (``If-None-Match: *``) carrying its
SHA-256 checksum: the first writer wins, S3 verifies the bytes, and S3 itself announces the new object
on the event queue. The body is hashed and counted on its way through, and its last piece is held back
until the whole body has been checked: a body of the wrong length or hash never reaches its full
``Content-Length``, so S3 stores nothing.

Assembly is an S3 multipart upload: each chunk is copied in server-side as the part of the same
number (``UploadPartCopy``), or a part is made of several pieces (chunks and tails) read and sent
joined (``UploadPart``), and the upload is completed from the ETags the finalizer kept.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import IO, cast

import structlog
from aiobotocore.response import StreamingBody
from botocore.exceptions import ClientError

from lfusys.files.ranges import ByteRange
from lfusys.files.service import content_disposition
from lfusys.observability.tracing import TRACEPARENT, current_traceparent
from lfusys.storage.aws.clients import AwsClients, error_code
from lfusys.storage.objects import checked_id, chunk_key, file_key, object_created_event, upload_prefix
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
)

log = structlog.get_logger(__name__)

EventSink = Callable[[str], Awaitable[None]]

_BLOCK = 1024 * 1024
_DELETE_BATCH = 1000
"""Keys per ``DeleteObjects`` (S3's limit)."""
_LONGEST_PRESIGNED = 7 * 24 * 3600
"""SigV4 presigned URLs live a week at most."""
_MISSING = {"404", "NoSuchKey", "NotFound"}
_CHUNK_NAME = re.compile(r"^chunk_([1-9][0-9]*)$")


class ObjectsNotDeleted(Exception):
    """S3 refused to delete some of the objects asked for."""


def _missing(exc: ClientError) -> bool:
    return error_code(exc) in _MISSING


def _checksum(sha256: str) -> str:
    """A hex SHA-256 as S3 carries it (``x-amz-checksum-sha256``: base64 of the digest)."""
    return base64.b64encode(bytes.fromhex(sha256)).decode("ascii")


async def _pieces(stream: StreamingBody) -> AsyncIterator[bytes]:
    """An object's bytes in pieces of up to 1 MiB; the connection is let go however the reading ends."""
    try:
        async for piece in stream.iter_chunks(_BLOCK):
            yield piece
    finally:
        stream.close()


class _CheckedBody:
    """A chunk's body as aiobotocore streams it into a request, checked on the way.

    aiobotocore sends an object it can iterate asynchronously piece by piece; ``read`` refuses, so
    nothing reads the body ahead of the request (payload signing is off, so it is not read twice
    either). The last piece is yielded only once the whole body has the announced length and hash;
    otherwise the iteration raises in its place, the request breaks off short of its
    ``Content-Length``, and S3 stores nothing.
    """

    def __init__(self, body: AsyncIterator[bytes], size: int, sha256: str, *, check: bool = True) -> None:
        self._body = body
        self._size = size
        self._sha256 = sha256
        self._check = check
        """Whether to hash the body here too (S3 checks it against ``ChecksumSHA256`` anyway)."""
        self.refusal: Exception | None = None
        """Why the body was not sent whole (a mismatch, or the client's body broke off)."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._checked_pieces()

    def read(self, *_: object) -> bytes:
        raise TypeError("a chunk body is streamed, not read")

    async def _checked_pieces(self) -> AsyncIterator[bytes]:
        digest = hashlib.sha256() if self._check else None
        received = 0
        held = b""
        try:
            async for piece in self._body:
                if not piece:
                    continue
                received += len(piece)
                if received > self._size:
                    raise ChunkSizeMismatch(self._size, received, too_large=True)
                if digest is not None:
                    digest.update(piece)
                if held:
                    yield held
                held = piece
            if received < self._size:
                raise ChunkSizeMismatch(self._size, received, too_large=False)
            if digest is not None and (actual := digest.hexdigest()) != self._sha256:
                raise ChunkHashMismatch(actual)
        except Exception as exc:
            self.refusal = exc
            raise
        if held:
            yield held


class S3BlobStore:
    """The BlobStore port over one S3 bucket."""

    def __init__(self, clients: AwsClients, *, copy_parallelism: int, on_object_created: EventSink) -> None:
        self._s3 = clients.s3
        self._s3_streaming = clients.s3_streaming
        self._bucket = clients.names.bucket
        self._copy_parallelism = copy_parallelism
        self._on_object_created = on_object_created

    # --- chunks ------------------------------------------------------------------------------

    async def put_chunk(
        self, upload_id: str, n: int, body: AsyncIterator[bytes], size: int, sha256: str, *, digest_known: bool = False
    ) -> bool:
        key = chunk_key(checked_id(upload_id), n)
        checked = _CheckedBody(body, size, sha256, check=not digest_known)
        traceparent = current_traceparent()
        traced = {TRACEPARENT: traceparent} if traceparent is not None else {}
        try:
            await self._s3_streaming.put_object(
                Bucket=self._bucket,
                Key=key,
                # aiobotocore streams any asynchronously iterable body (the stubs know only files).
                Body=cast(IO[bytes], checked),
                ContentLength=size,
                ChecksumSHA256=_checksum(sha256),
                IfNoneMatch="*",
                # S3's event does not carry it: the finalizer reads it from here.
                Metadata=traced,
            )
        except Exception as exc:
            # Whatever the request failed with, a refused or broken body is the cause.
            if checked.refusal is not None:
                raise checked.refusal from None
            if not isinstance(exc, ClientError):
                raise
            code = error_code(exc)
            if code == "BadDigest":  # changed on its way to S3, after our own check
                raise ChunkHashMismatch(sha256) from None
            if code == "PreconditionFailed":
                return await self._already_stored(upload_id, n, key, size, sha256, raced=False)
            if code == "ConditionalRequestConflict":
                return await self._already_stored(upload_id, n, key, size, sha256, raced=True)
            raise
        return True  # S3 announces the new object itself

    async def _already_stored(self, upload_id: str, n: int, key: str, size: int, sha256: str, *, raced: bool) -> bool:
        """After S3 refused the conditional put: a repeat of the stored chunk, or a conflict.

        412 means the key exists. 409 means another write or a delete of the key ran at the same
        moment: we look once, without waiting (the other writer may be a slow stream). Stored by
        then, it is told apart like a 412; not stored, nothing of ours is either, and the sender
        is asked to send the chunk again (:class:`UploadRemoved`: the ingress checks whether the
        upload has ended, and otherwise answers "send it again").
        """
        stored = await self._stored_sha256(key)
        if stored is None:
            what = "written or deleted at the same time" if raced else "deleted as it was refused"
            raise UploadRemoved(f"chunk {n} of upload {upload_id} was {what}; nothing was stored")
        if stored != sha256:
            raise ChunkConflict(f"chunk {n} of upload {upload_id} is already stored with different content")
        # S3 sends no event for a refused put: announce the repeat ourselves, so a lost event is made good.
        await self._announce(key, size)
        return False

    async def _announce(self, key: str, size: int) -> None:
        try:
            event = object_created_event(self._bucket, key, size, time.time_ns(), current_traceparent())
            await self._on_object_created(event)
        except Exception:
            # The chunk is stored and its hash will be recorded; the janitor's recovery finds it.
            log.exception("storage event could not be queued; recovery will record the chunk", key=key)

    async def _stored_sha256(self, key: str) -> str | None:
        """The hex SHA-256 of a stored object, or ``None`` if there is none."""
        try:
            head = await self._s3.head_object(Bucket=self._bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        checksum = head.get("ChecksumSHA256")
        # A checksum with "-" is a multipart object's checksum of checksums, not the object's own.
        if checksum and "-" not in checksum:
            return base64.b64decode(checksum).hex()
        return await self._hash_object(key)

    async def _hash_object(self, key: str) -> str | None:
        try:
            response = await self._s3.get_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        digest = hashlib.sha256()
        async for piece in _pieces(response["Body"]):
            digest.update(piece)
        return digest.hexdigest()

    async def chunk_sha256(self, upload_id: str, n: int) -> str:
        sha256 = await self._stored_sha256(chunk_key(checked_id(upload_id), n))
        if sha256 is None:
            raise ChunkMissing(n)
        return sha256

    async def chunk_traceparent(self, upload_id: str, n: int) -> str | None:
        try:
            head = await self._s3.head_object(Bucket=self._bucket, Key=chunk_key(checked_id(upload_id), n))
        except ClientError:
            return None
        return head.get("Metadata", {}).get(TRACEPARENT)

    async def list_chunks(self, upload_id: str) -> list[int]:
        prefix = upload_prefix(checked_id(upload_id))
        found: list[int] = []
        async for keys in self._pages_of_keys(prefix):
            for key in keys:
                match = _CHUNK_NAME.match(key.removeprefix(prefix))
                if match:
                    found.append(int(match.group(1)))
        return sorted(found)

    async def delete_chunk(self, upload_id: str, n: int) -> None:
        await self._s3.delete_object(Bucket=self._bucket, Key=chunk_key(checked_id(upload_id), n))

    async def delete_upload(self, upload_id: str) -> None:
        prefix = upload_prefix(checked_id(upload_id))
        # Pass after pass until a listing finds nothing: a chunk may still arrive while the first runs.
        while True:
            deleted = 0
            async for keys in self._pages_of_keys(prefix):
                await self._delete_keys(keys)
                deleted += len(keys)
            if not deleted:
                return

    def _tail_key(self, upload_id: str, offset: int) -> str:
        return f"{upload_prefix(checked_id(upload_id))}tail_{int(offset)}"

    async def put_tail(self, upload_id: str, offset: int, data: bytes) -> None:
        # S3 stores an object whole or not at all; its event names no chunk, so the worker drops it.
        await self._s3.put_object(Bucket=self._bucket, Key=self._tail_key(upload_id, offset), Body=data)

    async def get_tail(self, upload_id: str, offset: int) -> bytes:
        try:
            answer = await self._s3.get_object(Bucket=self._bucket, Key=self._tail_key(upload_id, offset))
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                raise ChunkMissing(0) from None
            raise
        async with answer["Body"] as body:
            data: bytes = await body.read()
        return data

    async def delete_tail(self, upload_id: str, offset: int) -> None:
        await self._s3.delete_object(Bucket=self._bucket, Key=self._tail_key(upload_id, offset))

    async def _pages_of_keys(self, prefix: str) -> AsyncIterator[list[str]]:
        """The keys under ``prefix``, a page (up to 1,000) at a time."""
        paginator = self._s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            keys = [item["Key"] for item in page.get("Contents", []) if "Key" in item]
            if keys:
                yield keys

    async def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = keys[start : start + _DELETE_BATCH]
            response = await self._s3.delete_objects(
                Bucket=self._bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                example = f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                raise ObjectsNotDeleted(f"{len(errors)} objects not deleted, e.g. {example}")

    # --- assembly ----------------------------------------------------------------------------

    async def start_assembly(self, file_id: str) -> str:
        created = await self._s3.create_multipart_upload(Bucket=self._bucket, Key=file_key(checked_id(file_id)))
        return created["UploadId"]

    async def copy_parts(self, file_id: str, assembly_id: str, upload_id: str, chunks: list[ChunkSpan]) -> list[Part]:
        parts = [PartSource(span.n, (Piece(upload_id, span.size, n=span.n),)) for span in chunks]
        return await self.copy_pieces(file_id, assembly_id, parts)

    async def copy_pieces(self, file_id: str, assembly_id: str, parts: list[PartSource]) -> list[Part]:
        key = file_key(checked_id(file_id))
        slots = asyncio.Semaphore(self._copy_parallelism)
        failed = False

        async def make(part: PartSource) -> Part | None:
            nonlocal failed
            async with slots:
                if failed:  # one part has failed: the assembly will not be completed, make no more
                    return None
                try:
                    if len(part.pieces) == 1:
                        return await self._copy_part(key, assembly_id, part.number, part.pieces[0])
                    return await self._join_part(key, assembly_id, part)
                except Exception:
                    failed = True
                    raise

        results = await asyncio.gather(*(make(part) for part in parts), return_exceptions=True)
        # The first failure in the order given, so the same problem is reported whatever finished first.
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [result for result in results if isinstance(result, Part)]

    async def _copy_part(self, key: str, assembly_id: str, number: int, piece: Piece) -> Part:
        source = await self._checked_piece(piece)
        try:
            copied = await self._s3.upload_part_copy(
                Bucket=self._bucket,
                Key=key,
                UploadId=assembly_id,
                PartNumber=number,
                CopySource={"Bucket": self._bucket, "Key": source},
            )
        except ClientError as exc:
            if error_code(exc) == "NoSuchUpload":
                raise AssemblyLost(f"no assembly {assembly_id} of {key}") from None
            if _missing(exc):  # deleted since it was looked at
                raise ChunkMissing(piece.n) from None
            raise
        return Part(number, copied["CopyPartResult"]["ETag"])

    async def _join_part(self, key: str, assembly_id: str, part: PartSource) -> Part:
        data = b"".join([await self._piece_bytes(piece) for piece in part.pieces])
        try:
            made = await self._s3.upload_part(
                Bucket=self._bucket, Key=key, UploadId=assembly_id, PartNumber=part.number, Body=data
            )
        except ClientError as exc:
            if error_code(exc) == "NoSuchUpload":
                raise AssemblyLost(f"no assembly {assembly_id} of {key}") from None
            raise
        return Part(part.number, made["ETag"])

    def _piece_key(self, piece: Piece) -> str:
        if piece.n:
            return chunk_key(checked_id(piece.upload_id), piece.n)
        return self._tail_key(piece.upload_id, piece.tail_end)

    async def _checked_piece(self, piece: Piece) -> str:
        """The key of ``piece``, once it is known to be stored with the piece's length."""
        source = self._piece_key(piece)
        try:
            head = await self._s3.head_object(Bucket=self._bucket, Key=source)
        except ClientError as exc:
            if _missing(exc):
                raise ChunkMissing(piece.n) from None
            raise
        if head["ContentLength"] != piece.size:
            raise ChunkWrongSize(piece.n, piece.size, head["ContentLength"])
        return source

    async def _piece_bytes(self, piece: Piece) -> bytes:
        try:
            answer = await self._s3.get_object(Bucket=self._bucket, Key=self._piece_key(piece))
        except ClientError as exc:
            if _missing(exc):
                raise ChunkMissing(piece.n) from None
            raise
        async with answer["Body"] as body:
            if answer["ContentLength"] != piece.size:
                raise ChunkWrongSize(piece.n, piece.size, answer["ContentLength"])
            data: bytes = await body.read()
        return data

    async def complete_assembly(self, file_id: str, assembly_id: str, parts: list[Part]) -> int:
        key = file_key(checked_id(file_id))
        try:
            await self._s3.complete_multipart_upload(
                Bucket=self._bucket,
                Key=key,
                UploadId=assembly_id,
                MultipartUpload={"Parts": [{"PartNumber": part.number, "ETag": part.etag} for part in parts]},
            )
        except ClientError as exc:
            code = error_code(exc)
            if code == "NoSuchUpload":
                # Completed by an earlier attempt (the upload id is gone once it is), or aborted.
                size = await self._object_size(key)
                if size is not None:
                    return size
                raise AssemblyLost(f"no assembly {assembly_id} of {key}") from None
            if code in {"InvalidPart", "InvalidPartOrder"}:
                raise AssemblyLost(f"the parts of assembly {assembly_id} are not the recorded ones") from None
            raise
        size = await self._object_size(key)
        if size is None:
            raise AssemblyLost(f"{key} is gone just after its assembly {assembly_id} was completed")
        return size

    async def copy_chunk_as_file(self, file_id: str, upload_id: str, chunk: ChunkSpan) -> int:
        """Make ``files/{file_id}`` a copy of one chunk (a one-chunk file needs no assembly); return its size.

        One ``CopyObject`` instead of a multipart upload's three requests, and the file keeps the
        chunk's plain SHA-256 checksum. Raises :class:`ChunkMissing` or :class:`ChunkWrongSize`.
        """
        key = file_key(checked_id(file_id))
        source = await self._checked_piece(Piece(upload_id, chunk.size, n=chunk.n))
        try:
            await self._s3.copy_object(
                Bucket=self._bucket,
                Key=key,
                CopySource={"Bucket": self._bucket, "Key": source},
                ChecksumAlgorithm="SHA256",
            )
        except ClientError as exc:
            if _missing(exc):
                raise ChunkMissing(chunk.n) from None
            raise
        return chunk.size

    async def abort_assembly(self, file_id: str, assembly_id: str) -> None:
        try:
            await self._s3.abort_multipart_upload(
                Bucket=self._bucket, Key=file_key(checked_id(file_id)), UploadId=assembly_id
            )
        except ClientError as exc:
            if error_code(exc) not in {"NoSuchUpload", *_MISSING}:
                raise

    # --- files -------------------------------------------------------------------------------

    async def _object_size(self, key: str) -> int | None:
        try:
            head = await self._s3.head_object(Bucket=self._bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return head["ContentLength"]

    async def file_size(self, file_id: str) -> int | None:
        return await self._object_size(file_key(checked_id(file_id)))

    async def read_file(self, file_id: str, byte_range: ByteRange | None) -> AsyncIterator[bytes]:
        key = file_key(checked_id(file_id))
        try:
            if byte_range is None:
                response = await self._s3.get_object(Bucket=self._bucket, Key=key)
            else:
                span = f"bytes={byte_range.start}-{byte_range.end}"
                response = await self._s3.get_object(Bucket=self._bucket, Key=key, Range=span)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(file_id) from None
            raise
        async for piece in _pieces(response["Body"]):
            yield piece

    async def download_url(self, file_id: str, file_name: str, file_type: str, expires_at: datetime) -> str:
        seconds = math.ceil((expires_at - datetime.now(UTC)).total_seconds())
        return await self._s3.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": file_key(checked_id(file_id)),
                "ResponseContentDisposition": content_disposition(file_name),
                "ResponseContentType": file_type,
            },
            ExpiresIn=min(max(seconds, 1), _LONGEST_PRESIGNED),
        )

    async def delete_file(self, file_id: str) -> None:
        await self._s3.delete_object(Bucket=self._bucket, Key=file_key(checked_id(file_id)))
