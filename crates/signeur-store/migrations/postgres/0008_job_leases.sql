-- Per-job leases fenced by a token (issue 14). Each claim draws a new token; renewing the
-- lease (the running job's heartbeat), completing, retrying and failing a job all name it,
-- so a worker that lost its lease to another node changes nothing.
ALTER TABLE jobs ADD COLUMN lease_token UUID;
