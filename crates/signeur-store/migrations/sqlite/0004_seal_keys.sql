-- Each organization's generated sealing identity (used when no SIGNEUR_SEAL_P12 is set).
CREATE TABLE seal_keys (
    org_id           BLOB PRIMARY KEY REFERENCES organizations (id),
    certificate_der  BLOB NOT NULL,
    private_key_enc  BLOB NOT NULL,
    created_at       TEXT NOT NULL
);
