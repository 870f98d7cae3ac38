-- Embedded signing sessions, organization settings, and links rotated away.

CREATE TABLE org_settings (
    org_id                 UUID PRIMARY KEY REFERENCES organizations (id),
    allowed_return_urls    TEXT NOT NULL,
    allowed_frame_origins  TEXT NOT NULL,
    session_secret         BYTEA,
    updated_at             TIMESTAMPTZ NOT NULL
);

CREATE TABLE signing_sessions (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES organizations (id),
    request_id    UUID NOT NULL REFERENCES signature_requests (id),
    signer_id     UUID NOT NULL REFERENCES signers (id),
    token_hash    TEXT NOT NULL UNIQUE,
    return_url    TEXT NOT NULL,
    state         TEXT,
    status        TEXT NOT NULL,
    result        TEXT,
    failure_code  TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    opened_at     TIMESTAMPTZ,
    completed_at  TIMESTAMPTZ
);
CREATE INDEX signing_sessions_open ON signing_sessions (status, expires_at);

CREATE TABLE retired_tokens (
    token_hash  TEXT PRIMARY KEY,
    signer_id   UUID NOT NULL REFERENCES signers (id),
    retired_at  TIMESTAMPTZ NOT NULL
);
