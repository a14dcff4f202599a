-- Failed finalizations, bounded retries, per-owner usage for atomic quota, and indexed sweeps.

ALTER TABLE uploads ADD COLUMN finalize_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE uploads ADD COLUMN failure_reason TEXT;

-- Bytes each owner holds: declared sizes of unfinished sessions plus sizes of files. Reserved in the
-- transaction that creates a session, released in the one that ends it without a file or deletes a file.
CREATE TABLE usage (
    owner_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    bytes    INTEGER NOT NULL CHECK (bytes >= 0)
);
INSERT INTO usage (owner_id, bytes)
SELECT owner_id, SUM(bytes) FROM (
    SELECT owner_id, size AS bytes FROM files
    UNION ALL
    SELECT owner_id, file_size AS bytes FROM uploads WHERE status IN ('pending', 'in_progress', 'finalizing')
) GROUP BY owner_id;

-- The janitor's questions, each answered from an index instead of a scan of every upload ever made.
CREATE INDEX uploads_needing_cleanup ON uploads (updated_at)
    WHERE cleaned_at IS NULL AND status IN ('completed', 'cancelled', 'expired', 'failed');
CREATE INDEX uploads_by_activity ON uploads (status, updated_at);
CREATE INDEX uploads_finalizing_by_lease ON uploads (lease_expires_at) WHERE status = 'finalizing';
