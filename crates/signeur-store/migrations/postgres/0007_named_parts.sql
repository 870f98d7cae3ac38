-- The get's signers and events (migration 0006) as JSON objects keyed by the row structs'
-- field names instead of positional arrays, so the Rust side reads them by name and a new
-- column is one entry here: the functions below are the ONE place that says what a get reads
-- of a signer or an event on PostgreSQL (the SQLite twin: its views). A signer's update
-- rewrites the request's array only when its element changed (the access-code counters are
-- not in it), so updates of the gate never touch the request row; every transaction that
-- changes an element locks its request first (`lock_request`), as before.
DROP TRIGGER signers_json_insert_delete ON signers;
DROP TRIGGER signers_json_update ON signers;
DROP TRIGGER events_json_insert ON events;
DROP VIEW signer_json_arrays;
DROP VIEW event_json_arrays;

CREATE FUNCTION signeur_signer_part(s signers) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'id', s.id,
    'position', s.position,
    'email', s.email,
    'name', s.name,
    'name_as_signed', s.name_as_signed,
    'locale', s.locale,
    'access_token', s.access_token,
    'status', s.status,
    'sent_at', s.sent_at,
    'opened_at', s.opened_at,
    'signed_at', s.signed_at,
    'declined_at', s.declined_at,
    'decline_reason', s.decline_reason,
    'invalidated_at', s.invalidated_at,
    'ip_address', s.ip_address,
    'user_agent', s.user_agent,
    'representing_as_invited', s.representing_as_invited,
    'representing_as_signed', s.representing_as_signed,
    'representing_role', s.representing_role,
    'representing_entity_id', s.representing_entity_id,
    'email_sent', s.email_sent,
    'email_error', s.email_error,
    'verification_method', s.verification_method,
    'signature_image_blob', s.signature_image_blob,
    'signature_position', s.signature_position)
$$;

CREATE FUNCTION signeur_event_part(e events) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'id', e.id,
    'signer_id', e.signer_id,
    'seq', e.seq,
    'type', e.type,
    'created_at', e.created_at,
    'data', e.data,
    'prev_hash', e.prev_hash,
    'hash', e.hash)
$$;

CREATE VIEW signer_json_arrays AS
  SELECT request_id, json_agg(signeur_signer_part(s))::text AS json
  FROM signers s GROUP BY request_id;

CREATE VIEW event_json_arrays AS
  SELECT request_id, json_agg(signeur_event_part(e))::text AS json
  FROM events e GROUP BY request_id;

CREATE OR REPLACE FUNCTION signeur_refresh_signers_json() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  request uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.request_id ELSE NEW.request_id END;
BEGIN
  IF TG_OP = 'UPDATE'
     AND signeur_signer_part(NEW)::text IS NOT DISTINCT FROM signeur_signer_part(OLD)::text THEN
    RETURN NULL;
  END IF;
  UPDATE signature_requests SET signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = request), '[]')
  WHERE id = request;
  RETURN NULL;
END
$$;

CREATE TRIGGER signers_json_change AFTER INSERT OR UPDATE OR DELETE ON signers
  FOR EACH ROW EXECUTE FUNCTION signeur_refresh_signers_json();

-- Events are only ever inserted (the hash chain forbids changing one).
CREATE TRIGGER events_json_insert AFTER INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION signeur_refresh_events_json();

UPDATE signature_requests SET
  signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = signature_requests.id), '[]'),
  events_json = coalesce(
    (SELECT json FROM event_json_arrays v WHERE v.request_id = signature_requests.id), '[]');
