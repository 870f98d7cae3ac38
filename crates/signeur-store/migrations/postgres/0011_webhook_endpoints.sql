-- Webhook endpoints (issue 15): where an organization's events are delivered. The secret is
-- encrypted with the master key; during a rotation the previous one keeps signing until
-- `previous_secret_until`. `failing_since`: when deliveries started failing without a
-- success since (an endpoint failing for five days is disabled with a reason).
CREATE TABLE webhook_endpoints (
    id                     UUID PRIMARY KEY,
    org_id                 UUID NOT NULL REFERENCES organizations (id),
    url                    TEXT NOT NULL,
    event_types            TEXT NOT NULL,
    description            TEXT,
    secret                 BYTEA NOT NULL,
    previous_secret        BYTEA,
    previous_secret_until  TIMESTAMPTZ,
    disabled_at            TIMESTAMPTZ,
    disabled_reason        TEXT,
    failing_since          TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (org_id, created_at);
