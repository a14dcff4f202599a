-- tus uploads: the durable offset of each, and who is writing at it (a claim taken by a conditional
-- update, so two requests at one offset cannot both win).

CREATE TABLE tus_uploads (
    id           TEXT PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    owner_id     TEXT NOT NULL,
    length       INTEGER NOT NULL,
    "offset"     INTEGER NOT NULL DEFAULT 0,
    metadata     TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    writer       TEXT,
    writer_until TEXT
) WITHOUT ROWID;
