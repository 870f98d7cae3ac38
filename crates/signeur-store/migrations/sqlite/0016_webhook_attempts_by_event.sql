-- A request's webhook attempts are listed in its audit trail (issue 15): found through its
-- events (events (request_id, seq) is already indexed), then by event id here.
CREATE INDEX webhook_attempts_event ON webhook_attempts (event_id, created_at, id);
