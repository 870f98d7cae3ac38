-- Webhook delivery (issue 15): one delivery per (event, matching endpoint), created in the
-- transaction that records the event (a transactional outbox); its body is fixed then, so
-- every attempt sends the same bytes. Each attempt is a row of webhook_attempts (the
-- history the API lists). No foreign key to the endpoint: a delivery outlives a deleted
-- endpoint, and stops before its next attempt when the endpoint is gone or disabled.
CREATE TABLE webhook_deliveries (
    id           UUID PRIMARY KEY,
    org_id       UUID NOT NULL REFERENCES organizations (id),
    endpoint_id  UUID NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    event_at     TIMESTAMPTZ NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    id                UUID PRIMARY KEY,
    delivery_id       UUID NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    endpoint_id       UUID NOT NULL,
    event_id          TEXT NOT NULL,
    event_type        TEXT NOT NULL,
    attempt           BIGINT NOT NULL,
    status            TEXT NOT NULL,
    http_status       BIGINT,
    duration_ms       BIGINT NOT NULL,
    error             TEXT,
    response_excerpt  TEXT,
    created_at        TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, created_at, id);
