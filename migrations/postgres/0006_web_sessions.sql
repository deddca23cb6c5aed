-- Web UI sessions. The cookie carries a random token; only its SHA-256 is stored, beside the
-- hash of the API key that signed in, so revoking the key ends its sessions at once.
CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);
