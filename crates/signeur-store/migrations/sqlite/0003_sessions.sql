-- Embedded signing sessions, organization settings, and links rotated away.

CREATE TABLE org_settings (
    org_id                 BLOB PRIMARY KEY REFERENCES organizations (id),
    allowed_return_urls    TEXT NOT NULL,
    allowed_frame_origins  TEXT NOT NULL,
    session_secret         BLOB,
    updated_at             TEXT NOT NULL
);

CREATE TABLE signing_sessions (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES organizations (id),
    request_id    BLOB NOT NULL REFERENCES signature_requests (id),
    signer_id     BLOB NOT NULL REFERENCES signers (id),
    token_hash    TEXT NOT NULL UNIQUE,
    return_url    TEXT NOT NULL,
    state         TEXT,
    status        TEXT NOT NULL,
    result        TEXT,
    failure_code  TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    opened_at     TEXT,
    completed_at  TEXT
);
CREATE INDEX signing_sessions_open ON signing_sessions (status, expires_at);

CREATE TABLE retired_tokens (
    token_hash  TEXT PRIMARY KEY,
    signer_id   BLOB NOT NULL REFERENCES signers (id),
    retired_at  TEXT NOT NULL
);
