-- Failed uploads, earliest failure first, for `lfusys uploads --status failed` (finalizing ones are read
-- from uploads_finalizing_by_lease).
CREATE INDEX uploads_failed_by_time ON uploads (updated_at, id) WHERE status = 'failed';
