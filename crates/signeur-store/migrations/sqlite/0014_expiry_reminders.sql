-- Expiry and reminders (issue 16).
-- The expiry job's one query: open requests whose expires_at has passed, oldest first.
CREATE INDEX signature_requests_expiry ON signature_requests (expires_at)
    WHERE status IN ('pending', 'sent', 'opened');

-- The organization's reminder policy as JSON: NULL = never set (the default policy),
-- 'null' = no reminders, else {"first_after_days", "every_days", "max"}.
ALTER TABLE org_settings ADD COLUMN reminders TEXT;

-- One row per signer of a request that has reminders: the request's policy as it was at
-- create (later settings changes do not rewrite it), how many reminders went out, and when
-- the next one is due (NULL: none scheduled, e.g. not invited yet or done).
CREATE TABLE signer_reminders (
    signer_id         BLOB PRIMARY KEY REFERENCES signers (id),
    request_id        BLOB NOT NULL REFERENCES signature_requests (id),
    org_id            BLOB NOT NULL REFERENCES organizations (id),
    first_after_days  INTEGER NOT NULL,
    every_days        INTEGER NOT NULL,
    max_reminders     INTEGER NOT NULL,
    sent_count        INTEGER NOT NULL DEFAULT 0,
    last_sent_at      TEXT,
    next_at           TEXT
);
CREATE INDEX signer_reminders_due ON signer_reminders (next_at) WHERE next_at IS NOT NULL;
