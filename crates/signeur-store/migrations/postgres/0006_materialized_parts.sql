-- A request's signers and events as the JSON arrays the get read decodes, kept on the request
-- row by triggers in the same transaction as every change to them, so a read is one row
-- (signers and events are written far less often than requests are read). Each element holds
-- the row struct's fields in declaration order (SignerRow, EventRow in
-- crates/signeur-store/src/requests.rs), without the request and organization ids. A column
-- added to those structs goes into these views, into the `UPDATE OF` list below, and into the
-- SQLite twin of this file. The triggers write the request row: a transaction that changes a
-- signer locks its request first (`lock_request`), so two writers never wait on each other in
-- opposite orders.
ALTER TABLE signature_requests ADD COLUMN signers_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE signature_requests ADD COLUMN events_json TEXT NOT NULL DEFAULT '[]';

CREATE VIEW signer_json_arrays AS
  SELECT request_id, json_agg(json_build_array(
    id, position, email, name, name_as_signed, locale, access_token, status, sent_at,
    opened_at, signed_at, declined_at, decline_reason, invalidated_at, ip_address, user_agent,
    representing_as_invited, representing_as_signed, representing_role, representing_entity_id,
    email_sent, email_error, verification_method, signature_image_blob, signature_position
  ))::text AS json
  FROM signers GROUP BY request_id;

CREATE VIEW event_json_arrays AS
  SELECT request_id, json_agg(json_build_array(
    id, signer_id, seq, type, created_at, data, prev_hash, hash))::text AS json
  FROM events GROUP BY request_id;

CREATE FUNCTION signeur_refresh_signers_json() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  request uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.request_id ELSE NEW.request_id END;
BEGIN
  UPDATE signature_requests SET signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = request), '[]')
  WHERE id = request;
  RETURN NULL;
END
$$;

CREATE FUNCTION signeur_refresh_events_json() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE signature_requests SET events_json = coalesce(
    (SELECT json FROM event_json_arrays v WHERE v.request_id = NEW.request_id), '[]')
  WHERE id = NEW.request_id;
  RETURN NULL;
END
$$;

CREATE TRIGGER signers_json_insert_delete AFTER INSERT OR DELETE ON signers
  FOR EACH ROW EXECUTE FUNCTION signeur_refresh_signers_json();

CREATE TRIGGER signers_json_update AFTER UPDATE OF
  position, email, name, name_as_signed, locale, access_token, status, sent_at, opened_at,
  signed_at, declined_at, decline_reason, invalidated_at, ip_address, user_agent,
  representing_as_invited, representing_as_signed, representing_role, representing_entity_id,
  email_sent, email_error, verification_method, signature_image_blob, signature_position
  ON signers FOR EACH ROW EXECUTE FUNCTION signeur_refresh_signers_json();

-- Events are only ever inserted (the hash chain forbids changing one).
CREATE TRIGGER events_json_insert AFTER INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION signeur_refresh_events_json();

UPDATE signature_requests SET
  signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = signature_requests.id), '[]'),
  events_json = coalesce(
    (SELECT json FROM event_json_arrays v WHERE v.request_id = signature_requests.id), '[]');
