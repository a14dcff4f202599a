-- A file joined from other uploads (tus concatenation) names them, in order: their ids separated by
-- single spaces ('' for an ordinary session, which has chunks of its own).

ALTER TABLE uploads ADD COLUMN sources TEXT NOT NULL DEFAULT '';
