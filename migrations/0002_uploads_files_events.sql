-- Upload sessions with their chunk sets, finished files, and the local storage-event queue.
-- Timestamps are ISO 8601 strings in UTC with microseconds, so they sort as text.

CREATE TABLE uploads (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_name        TEXT NOT NULL,
    file_type        TEXT NOT NULL,
    file_size        INTEGER NOT NULL,
    chunk_size       INTEGER NOT NULL,
    total_chunks     INTEGER NOT NULL,
    status           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    stored_chunks    INTEGER NOT NULL DEFAULT 0,  -- chunks accepted through the API
    recorded_chunks  INTEGER NOT NULL DEFAULT 0,  -- chunks whose storage event was recorded
    file_id          TEXT,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    cleaned_at       TEXT                         -- chunks deleted after the session finished
);
CREATE INDEX uploads_by_owner ON uploads (owner_id, status, created_at);
CREATE INDEX uploads_by_status ON uploads (status, expires_at);

CREATE TABLE upload_chunks (
    upload_id   TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    sha256      TEXT,   -- verified hash, saved when the chunk is accepted
    recorded_at TEXT,   -- when the worker recorded the chunk's storage event
    PRIMARY KEY (upload_id, n)
) WITHOUT ROWID;

CREATE TABLE files (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upload_id  TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    type       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    checksum   TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX files_by_owner ON files (owner_id, created_at DESC, id DESC);

-- Storage events, shaped like S3 event notifications, with SQS-like visibility.
CREATE TABLE event_queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT NOT NULL,
    enqueued_at   REAL NOT NULL,    -- Unix time
    visible_at    REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT
);
CREATE INDEX event_queue_by_visibility ON event_queue (visible_at, id);

CREATE TABLE event_dead_letters (
    id            INTEGER PRIMARY KEY,
    body          TEXT NOT NULL,
    enqueued_at   REAL NOT NULL,
    dead_at       REAL NOT NULL,
    receive_count INTEGER NOT NULL
);
