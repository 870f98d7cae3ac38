-- The token of an idempotency key's current reservation: completing or releasing the key
-- takes it, so a request whose reservation lapsed and was taken over (a long SMTP budget)
-- cannot overwrite or free its successor's (issue 14). Null on rows reserved before.
ALTER TABLE idempotency_keys ADD COLUMN reservation_token TEXT;
