-- Sign-in identities at OAuth providers: each (provider, provider_user_id) belongs to exactly one user,
-- and a user may have several.

CREATE TABLE user_identities (
    provider         TEXT NOT NULL,   -- 'github' or 'google'
    provider_user_id TEXT NOT NULL,   -- the provider's own id for the account, as text
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    linked_at        TEXT NOT NULL,
    PRIMARY KEY (provider, provider_user_id)
) WITHOUT ROWID;
CREATE INDEX user_identities_by_user ON user_identities (user_id, provider);
