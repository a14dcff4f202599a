-- Personal API tokens: the secret is kept only as its SHA-256; the id is part of the token itself.

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,   -- space separated: upload read delete
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    last_used_at TEXT,
    revoked_at   TEXT
) WITHOUT ROWID;
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at) WHERE revoked_at IS NULL;
