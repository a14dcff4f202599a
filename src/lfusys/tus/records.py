"""What the tus endpoint keeps beside an upload session: how many bytes are durably stored, and who
is writing at that offset."""

from __future__ import annotations

from datetime import datetime

import msgspec


class TusUpload(msgspec.Struct, frozen=True, kw_only=True):
    """A tus upload. Its id is its upload session's id; its bytes are the session's chunks, then a
    *tail*: the bytes past the last whole chunk, kept as one object named by ``offset``."""

    id: str
    owner_id: str
    length: int
    """The upload's length; while ``deferred``, only the most it may be (what its session reserved)."""
    deferred: bool = False
    """Created without ``Upload-Length`` (creation-defer-length): the length comes with a later PATCH."""
    concat: str = ""
    """``"partial"`` for a partial upload (its bytes wait to be joined into a final one; it never becomes
    a file of its own), ``"final"`` for an upload joined from partial ones, empty otherwise."""
    offset: int = 0
    """Bytes durably stored: every whole chunk below it, and the tail up to it."""
    metadata: str = ""
    """The ``Upload-Metadata`` header as it was given, sent back on ``HEAD``."""
    created_at: datetime
    writer: str | None = None
    """The request writing at ``offset`` now (a PATCH claims the offset before it writes)."""
    writer_until: datetime | None = None
    """When the writer's claim lapses if it is not renewed (a request that died)."""

    def claimable(self, offset: int, now: datetime) -> bool:
        """Whether a request may claim ``offset``: it is this upload's offset and nobody writes there."""
        return self.offset == offset and (self.writer is None or self.writer_until is None or self.writer_until <= now)
