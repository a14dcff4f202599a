"""Every AWS resource the backend uses: its name (all from one prefix) and, for DynamoDB, its shape.

The shapes live here, next to the names, because two parties need them: ``lfusys migrate`` creates
the tables from them, and the adapters read and write the items they describe.

Tables (on-demand capacity; every key is a string):

- ``users`` (``id``) and ``emails`` (``email`` → ``user_id``): an email item per account makes
  "one account per email" a conditional write.
- ``identities`` (``id = "<provider>#<provider_user_id>"`` → ``user_id``), with index ``by-user``
  (``user_id``, ``provider``): an identity item per sign-in identity makes "linked to exactly one user" a
  conditional write, and the index lists a user's identities.
- ``token-families`` (``id``) and ``refresh-tokens`` (``jti``, expired by DynamoDB's TTL on ``ttl``).
- ``api-tokens`` (``id``), with index ``by-user`` (``user_id``, ``created_key``) for a user's list; a
  token is checked by a consistent read of its id, never through the index.
- ``uploads`` (``id``, ``sk``): the session item has ``sk = "session"``; chunk ``n`` has
  ``sk = "chunk#00042"`` (zero-padded, so a query returns chunks in order). The session item carries
  sparse attributes that put it into an index only while it is in a given state:

  ======================  ===================  ===================  ==============================
  index                   partition key        sort key             present while
  ======================  ===================  ===================  ==============================
  ``by-owner``            ``unfinished_owner`` ``created_key``      pending, in_progress, finalizing
  ``accepting-by-expiry`` ``accepting``        ``expires_at``       pending, in_progress
  ``accepting-by-change`` ``accepting``        ``updated_at``       pending, in_progress
  ``finalizing-by-lease`` ``finalizing``       ``lease_expires_at`` finalizing
  ``needing-cleanup``     ``cleanup``          ``updated_at``       finished, chunks not yet deleted
  ``failed-by-time``      ``failed``           ``updated_at``       failed (since this index exists)
  ======================  ===================  ===================  ==============================

  ``unfinished_owner`` holds the owner's id, the flags hold ``"1"``; ``created_key`` is
  ``"<created_at>#<id>"`` so equal times still sort.
- ``usage`` (``owner_id`` → ``bytes``): reserved and released with conditional ``ADD``.
- ``files`` (``id``), with index ``by-owner`` (``owner_id``, ``created_key``) for newest-first pages.
- ``meta`` (``name``): the server keys, created once by whichever replica comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SESSION_SK = "session"
FLAG = "1"
"""The value of the sparse index flags (``accepting``, ``finalizing``, ``cleanup``, ``failed``)."""


def chunk_sk(n: int) -> str:
    return f"chunk#{n:05d}"


@dataclass(frozen=True)
class Names:
    """Resource names, all starting with the configured prefix."""

    prefix: str

    @property
    def bucket(self) -> str:
        return self.prefix

    @property
    def queue(self) -> str:
        return f"{self.prefix}-events"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}-events-dead"

    def table(self, kind: str) -> str:
        """``kind`` is one of :data:`TABLES`."""
        return f"{self.prefix}-{kind}"


def _key(*names: str) -> list[dict[str, str]]:
    return [{"AttributeName": name, "KeyType": kind} for name, kind in zip(names, ("HASH", "RANGE"), strict=False)]


def _index(name: str, *keys: str) -> dict[str, Any]:
    return {"IndexName": name, "KeySchema": _key(*keys), "Projection": {"ProjectionType": "ALL"}}


TABLES: dict[str, dict[str, Any]] = {
    "users": {"KeySchema": _key("id")},
    "emails": {"KeySchema": _key("email")},
    "identities": {"KeySchema": _key("id"), "GlobalSecondaryIndexes": [_index("by-user", "user_id", "provider")]},
    "token-families": {"KeySchema": _key("id")},
    "api-tokens": {"KeySchema": _key("id"), "GlobalSecondaryIndexes": [_index("by-user", "user_id", "created_key")]},
    "refresh-tokens": {"KeySchema": _key("jti"), "ttl": "ttl"},
    "uploads": {
        "KeySchema": _key("id", "sk"),
        "GlobalSecondaryIndexes": [
            _index("by-owner", "unfinished_owner", "created_key"),
            _index("accepting-by-expiry", "accepting", "expires_at"),
            _index("accepting-by-change", "accepting", "updated_at"),
            _index("finalizing-by-lease", "finalizing", "lease_expires_at"),
            _index("needing-cleanup", "cleanup", "updated_at"),
            _index("failed-by-time", "failed", "updated_at"),
        ],
    },
    "usage": {"KeySchema": _key("owner_id")},
    "files": {"KeySchema": _key("id"), "GlobalSecondaryIndexes": [_index("by-owner", "owner_id", "created_key")]},
    "meta": {"KeySchema": _key("name")},
}
"""Each table's keys and indexes (every key attribute is a string), and its TTL attribute if any."""


def table_definition(names: Names, kind: str) -> dict[str, Any]:
    """The ``CreateTable`` arguments for one of :data:`TABLES`."""
    spec = TABLES[kind]
    indexes = spec.get("GlobalSecondaryIndexes", [])
    key_attributes = {key["AttributeName"] for key in spec["KeySchema"]}
    key_attributes |= {key["AttributeName"] for index in indexes for key in index["KeySchema"]}
    definition: dict[str, Any] = {
        "TableName": names.table(kind),
        "KeySchema": spec["KeySchema"],
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in sorted(key_attributes)],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if indexes:
        definition["GlobalSecondaryIndexes"] = indexes
    return definition
