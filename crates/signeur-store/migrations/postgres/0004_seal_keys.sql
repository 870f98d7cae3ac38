-- Each organization's generated sealing identity (used when no SIGNEUR_SEAL_P12 is set).
CREATE TABLE seal_keys (
    org_id           UUID PRIMARY KEY REFERENCES organizations (id),
    certificate_der  BYTEA NOT NULL,
    private_key_enc  BYTEA NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
