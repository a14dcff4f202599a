-- Lists and sweeps that cost the same however many uploads were ever made: each reads a partial index
-- holding exactly the rows it asks about, in the order it wants them, and stops at its limit.

-- An owner's unfinished uploads, newest first, a page at a time.
CREATE INDEX uploads_unfinished_by_owner ON uploads (owner_id, created_at DESC, id DESC)
    WHERE status IN ('pending', 'in_progress', 'finalizing');
DROP INDEX uploads_by_owner;

-- Sessions that take chunks, by expiry: the janitor expires the overdue ones, oldest first.
CREATE INDEX uploads_accepting_by_expiry ON uploads (expires_at)
    WHERE status IN ('pending', 'in_progress');
DROP INDEX uploads_by_status;

-- Sessions that take chunks and either hold chunks whose events were not recorded or hold every
-- chunk: the janitor pushes on those that have been idle too long. A session is in this index only
-- between a chunk's arrival and its recording, so it stays small however many sessions there are.
CREATE INDEX uploads_needing_a_push ON uploads (updated_at)
    WHERE status IN ('pending', 'in_progress')
    AND (stored_chunks > recorded_chunks OR recorded_chunks = total_chunks);
DROP INDEX uploads_by_activity;
