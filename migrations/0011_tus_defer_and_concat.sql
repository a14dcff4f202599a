-- tus creation-defer-length (an upload whose length comes later; until then "length" is its reservation)
-- and concatenation (partial uploads, and final ones joined from them).

ALTER TABLE tus_uploads ADD COLUMN deferred INTEGER NOT NULL DEFAULT 0;

ALTER TABLE tus_uploads ADD COLUMN concat TEXT NOT NULL DEFAULT '';
