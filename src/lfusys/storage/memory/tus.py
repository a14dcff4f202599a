"""The TusStore port in this process's memory (each method is atomic on the one event loop)."""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from lfusys.tus.records import TusUpload


class MemoryTusStore:
    def __init__(self) -> None:
        self._uploads: dict[str, TusUpload] = {}

    async def create(self, upload: TusUpload) -> None:
        if upload.id in self._uploads:
            raise ValueError(f"tus upload {upload.id} exists")
        self._uploads[upload.id] = upload

    async def get(self, upload_id: str) -> TusUpload | None:
        return self._uploads.get(upload_id)

    async def claim(self, upload_id: str, offset: int, writer: str, until: datetime, now: datetime) -> TusUpload | None:
        upload = self._uploads.get(upload_id)
        if upload is None or not upload.claimable(offset, now):
            return None
        claimed = replace(upload, writer=writer, writer_until=until)
        self._uploads[upload_id] = claimed
        return claimed

    async def advance(self, upload_id: str, writer: str, offset: int, new_offset: int, until: datetime) -> bool:
        upload = self._uploads.get(upload_id)
        if upload is None or upload.writer != writer or upload.offset != offset:
            return False
        self._uploads[upload_id] = replace(upload, offset=new_offset, writer_until=until)
        return True

    async def release(self, upload_id: str, writer: str) -> None:
        upload = self._uploads.get(upload_id)
        if upload is not None and upload.writer == writer:
            self._uploads[upload_id] = replace(upload, writer=None, writer_until=None)

    async def set_length(self, upload_id: str, length: int) -> bool:
        upload = self._uploads.get(upload_id)
        if upload is None:
            return False
        if upload.deferred and length <= upload.length:
            self._uploads[upload_id] = upload = replace(upload, length=length, deferred=False)
        return not upload.deferred and upload.length == length

    async def delete(self, upload_id: str) -> None:
        self._uploads.pop(upload_id, None)
