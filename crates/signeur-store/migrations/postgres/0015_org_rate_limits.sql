-- Rate limits (issue 16): an operator's per-organization override of the API rate limit
-- (`signeur org set-rate-limit`); both NULL: the server's SIGNEUR_RATE_LIMIT_PER_SEC and
-- SIGNEUR_RATE_LIMIT_BURST. Read with the API key lookup, so a change reaches every node
-- within the key cache's time.
ALTER TABLE organizations ADD COLUMN rate_limit_per_sec BIGINT CHECK (rate_limit_per_sec >= 1);
ALTER TABLE organizations ADD COLUMN rate_limit_burst BIGINT CHECK (rate_limit_burst >= 1);
