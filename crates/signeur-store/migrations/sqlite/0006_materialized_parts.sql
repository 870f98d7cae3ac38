-- A request's signers and events as the JSON arrays the get read decodes, kept on the request
-- row by triggers in the same transaction as every change to them, so a read is one row
-- (signers and events are written far less often than requests are read). Each element holds
-- the row struct's fields in declaration order (SignerRow, EventRow in
-- crates/signeur-store/src/requests.rs), without the request and organization ids; ids as hex,
-- booleans as JSON. A column added to those structs goes into these views, into the
-- `UPDATE OF` list below, and into the PostgreSQL twin of this file.
ALTER TABLE signature_requests ADD COLUMN signers_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE signature_requests ADD COLUMN events_json TEXT NOT NULL DEFAULT '[]';

CREATE VIEW signer_json_arrays AS
  SELECT request_id, json_group_array(json_array(
    hex(id), position, email, name, name_as_signed, locale, access_token, status, sent_at,
    opened_at, signed_at, declined_at, decline_reason, invalidated_at, ip_address, user_agent,
    representing_as_invited, representing_as_signed, representing_role, representing_entity_id,
    CASE WHEN email_sent THEN json('true') ELSE json('false') END, email_error,
    verification_method, signature_image_blob, signature_position)) AS json
  FROM signers GROUP BY request_id;

CREATE VIEW event_json_arrays AS
  SELECT request_id, json_group_array(json_array(
    id, nullif(hex(signer_id), ''), seq, type, created_at, data, prev_hash, hash)) AS json
  FROM events GROUP BY request_id;

CREATE TRIGGER signers_json_insert AFTER INSERT ON signers BEGIN
  UPDATE signature_requests SET signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = NEW.request_id), '[]')
  WHERE id = NEW.request_id;
END;

CREATE TRIGGER signers_json_update AFTER UPDATE OF
  position, email, name, name_as_signed, locale, access_token, status, sent_at, opened_at,
  signed_at, declined_at, decline_reason, invalidated_at, ip_address, user_agent,
  representing_as_invited, representing_as_signed, representing_role, representing_entity_id,
  email_sent, email_error, verification_method, signature_image_blob, signature_position
  ON signers BEGIN
  UPDATE signature_requests SET signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = NEW.request_id), '[]')
  WHERE id = NEW.request_id;
END;

CREATE TRIGGER signers_json_delete AFTER DELETE ON signers BEGIN
  UPDATE signature_requests SET signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = OLD.request_id), '[]')
  WHERE id = OLD.request_id;
END;

-- Events are only ever inserted (the hash chain forbids changing one).
CREATE TRIGGER events_json_insert AFTER INSERT ON events BEGIN
  UPDATE signature_requests SET events_json = coalesce(
    (SELECT json FROM event_json_arrays v WHERE v.request_id = NEW.request_id), '[]')
  WHERE id = NEW.request_id;
END;

UPDATE signature_requests SET
  signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = signature_requests.id), '[]'),
  events_json = coalesce(
    (SELECT json FROM event_json_arrays v WHERE v.request_id = signature_requests.id), '[]');
