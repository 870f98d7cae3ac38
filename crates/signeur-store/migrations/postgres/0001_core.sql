-- The core: organizations, API keys, signature requests, signers, events, jobs, idempotency.
-- Timestamps are written by the application's clock, truncated to milliseconds.

CREATE TABLE organizations (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    org_id        UUID NOT NULL REFERENCES organizations (id),
    prefix        TEXT NOT NULL,
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

CREATE TABLE signature_requests (
    id                    UUID PRIMARY KEY,
    org_id                UUID NOT NULL REFERENCES organizations (id),
    title                 TEXT NOT NULL,
    message               TEXT,
    locale                TEXT NOT NULL,
    delivery              TEXT NOT NULL,
    signing_order         TEXT NOT NULL,
    metadata              TEXT,
    status                TEXT NOT NULL,
    document_filename     TEXT NOT NULL,
    document_hash         TEXT NOT NULL,
    document_size         BIGINT NOT NULL,
    document_page_count   BIGINT NOT NULL,
    document_blob         TEXT NOT NULL,
    signer_count          BIGINT NOT NULL,
    sealed_blob           TEXT,
    sealed_document_hash  TEXT,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL,
    sent_at               TIMESTAMPTZ,
    opened_at             TIMESTAMPTZ,
    signed_at             TIMESTAMPTZ,
    cancelled_at          TIMESTAMPTZ,
    cancel_reason         TEXT,
    declined_at           TIMESTAMPTZ,
    expired_at            TIMESTAMPTZ,
    expires_at            TIMESTAMPTZ NOT NULL,
    event_seq             BIGINT NOT NULL DEFAULT 0,
    last_event_hash       TEXT
);
CREATE INDEX signature_requests_org_created ON signature_requests (org_id, created_at DESC, id DESC);
CREATE INDEX signature_requests_document_blob ON signature_requests (document_blob);
CREATE INDEX signature_requests_sealed_blob ON signature_requests (sealed_blob);

CREATE TABLE signers (
    id                       UUID PRIMARY KEY,
    request_id               UUID NOT NULL REFERENCES signature_requests (id),
    org_id                   UUID NOT NULL REFERENCES organizations (id),
    position                 BIGINT NOT NULL,
    email                    TEXT,
    name                     TEXT,
    name_as_signed           TEXT,
    locale                   TEXT NOT NULL,
    access_token             TEXT NOT NULL UNIQUE,
    status                   TEXT NOT NULL,
    sent_at                  TIMESTAMPTZ,
    opened_at                TIMESTAMPTZ,
    signed_at                TIMESTAMPTZ,
    declined_at              TIMESTAMPTZ,
    decline_reason           TEXT,
    invalidated_at           TIMESTAMPTZ,
    ip_address               TEXT,
    user_agent               TEXT,
    representing_as_invited  TEXT,
    representing_as_signed   TEXT,
    representing_role        TEXT,
    representing_entity_id   TEXT,
    email_sent               BOOLEAN NOT NULL DEFAULT FALSE,
    email_error              TEXT,
    access_code_hash         TEXT,
    access_code_rotated_at   TIMESTAMPTZ,
    access_code_attempts     BIGINT NOT NULL DEFAULT 0,
    locked_until             TIMESTAMPTZ,
    UNIQUE (request_id, position)
);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations (id),
    request_id  UUID REFERENCES signature_requests (id),
    signer_id   UUID,
    seq         BIGINT NOT NULL,
    type        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    data        TEXT NOT NULL,
    prev_hash   TEXT,
    hash        TEXT NOT NULL,
    UNIQUE (request_id, seq)
);
CREATE INDEX events_org_created ON events (org_id, created_at, id);

CREATE TABLE jobs (
    id            UUID PRIMARY KEY,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    dedup_key     TEXT UNIQUE,
    run_at        TIMESTAMPTZ NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL,
    leased_until  TIMESTAMPTZ,
    last_error    TEXT,
    failed_at     TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX jobs_due ON jobs (kind, run_at) WHERE failed_at IS NULL;

CREATE TABLE idempotency_keys (
    org_id         UUID NOT NULL REFERENCES organizations (id),
    key            TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    body_hash      TEXT NOT NULL,
    locked_until   TIMESTAMPTZ,
    status_code    BIGINT,
    response_body  BYTEA,
    created_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
