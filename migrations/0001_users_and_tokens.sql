-- Accounts and refresh-token families.
-- Timestamps are ISO 8601 strings in UTC.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,   -- normalised to lower case by the application
    name          TEXT NOT NULL,
    password_hash TEXT,                   -- NULL for OAuth-only accounts
    created_at    TEXT NOT NULL
);

-- One family per sign-in; every refresh rotates to a new token in the same family.
CREATE TABLE token_families (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX token_families_by_user ON token_families (user_id);

CREATE TABLE refresh_tokens (
    jti        TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL,
    rotated_at TEXT                       -- set once, when the token is spent
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
