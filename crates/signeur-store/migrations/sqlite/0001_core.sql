-- The core: organizations, API keys, signature requests, signers, events, jobs, idempotency.
-- Timestamps are written by the application's clock, truncated to milliseconds; on SQLite they
-- are RFC 3339 text, whose lexical order is then their time order. UUIDs are 16-byte blobs.

CREATE TABLE organizations (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY,
    org_id        BLOB NOT NULL REFERENCES organizations (id),
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

CREATE TABLE signature_requests (
    id                    BLOB PRIMARY KEY,
    org_id                BLOB NOT NULL REFERENCES organizations (id),
    title                 TEXT NOT NULL,
    message               TEXT,
    locale                TEXT NOT NULL,
    delivery              TEXT NOT NULL,
    signing_order         TEXT NOT NULL,
    metadata              TEXT,
    status                TEXT NOT NULL,
    document_filename     TEXT NOT NULL,
    document_hash         TEXT NOT NULL,
    document_size         INTEGER NOT NULL,
    document_page_count   INTEGER NOT NULL,
    document_blob         TEXT NOT NULL,
    signer_count          INTEGER NOT NULL,
    sealed_blob           TEXT,
    sealed_document_hash  TEXT,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    sent_at               TEXT,
    opened_at             TEXT,
    signed_at             TEXT,
    cancelled_at          TEXT,
    cancel_reason         TEXT,
    declined_at           TEXT,
    expired_at            TEXT,
    expires_at            TEXT NOT NULL,
    event_seq             INTEGER NOT NULL DEFAULT 0,
    last_event_hash       TEXT
);
CREATE INDEX signature_requests_org_created ON signature_requests (org_id, created_at DESC, id DESC);
CREATE INDEX signature_requests_document_blob ON signature_requests (document_blob);
CREATE INDEX signature_requests_sealed_blob ON signature_requests (sealed_blob);

CREATE TABLE signers (
    id                       BLOB PRIMARY KEY,
    request_id               BLOB NOT NULL REFERENCES signature_requests (id),
    org_id                   BLOB NOT NULL REFERENCES organizations (id),
    position                 INTEGER NOT NULL,
    email                    TEXT,
    name                     TEXT,
    name_as_signed           TEXT,
    locale                   TEXT NOT NULL,
    access_token             TEXT NOT NULL UNIQUE,
    status                   TEXT NOT NULL,
    sent_at                  TEXT,
    opened_at                TEXT,
    signed_at                TEXT,
    declined_at              TEXT,
    decline_reason           TEXT,
    invalidated_at           TEXT,
    ip_address               TEXT,
    user_agent               TEXT,
    representing_as_invited  TEXT,
    representing_as_signed   TEXT,
    representing_role        TEXT,
    representing_entity_id   TEXT,
    email_sent               BOOLEAN NOT NULL DEFAULT 0,
    email_error              TEXT,
    access_code_hash         TEXT,
    access_code_rotated_at   TEXT,
    access_code_attempts     INTEGER NOT NULL DEFAULT 0,
    locked_until             TEXT,
    UNIQUE (request_id, position)
);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    org_id      BLOB NOT NULL REFERENCES organizations (id),
    request_id  BLOB REFERENCES signature_requests (id),
    signer_id   BLOB,
    seq         INTEGER NOT NULL,
    type        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    data        TEXT NOT NULL,
    prev_hash   TEXT,
    hash        TEXT NOT NULL,
    UNIQUE (request_id, seq)
);
CREATE INDEX events_org_created ON events (org_id, created_at, id);

CREATE TABLE jobs (
    id            BLOB PRIMARY KEY,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    dedup_key     TEXT UNIQUE,
    run_at        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL,
    leased_until  TEXT,
    last_error    TEXT,
    failed_at     TEXT,
    created_at    TEXT NOT NULL
);
CREATE INDEX jobs_due ON jobs (kind, run_at) WHERE failed_at IS NULL;

CREATE TABLE idempotency_keys (
    org_id         BLOB NOT NULL REFERENCES organizations (id),
    key            TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    body_hash      TEXT NOT NULL,
    locked_until   TEXT,
    status_code    INTEGER,
    response_body  BLOB,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
