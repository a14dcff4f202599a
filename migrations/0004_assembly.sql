-- Assembly shaped like an S3 multipart upload: its id on the session, each part's ETag on its chunk.

ALTER TABLE uploads ADD COLUMN assembly_id TEXT;
ALTER TABLE upload_chunks ADD COLUMN part_etag TEXT;
