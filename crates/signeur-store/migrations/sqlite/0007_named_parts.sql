-- The get's signers and events (migration 0006) as JSON objects keyed by the row structs'
-- field names instead of positional arrays, so the Rust side reads them by name and a new
-- column is one entry here: the views below are the ONE place that says what a get reads of a
-- signer or an event on SQLite (the PostgreSQL twin: the functions signeur_signer_part and
-- signeur_event_part). The update trigger fires on any change of a signer (SQLite has one
-- writer, so rewriting the array for an access-code counter costs a little and locks nothing).
DROP TRIGGER signers_json_insert;
DROP TRIGGER signers_json_update;
DROP TRIGGER signers_json_delete;
DROP TRIGGER events_json_insert;
DROP VIEW signer_json_arrays;
DROP VIEW event_json_arrays;

CREATE VIEW signer_json_arrays AS
  SELECT request_id, json_group_array(json_object(
    'id', hex(id),
    'position', position,
    'email', email,
    'name', name,
    'name_as_signed', name_as_signed,
    'locale', locale,
    'access_token', access_token,
    'status', status,
    'sent_at', sent_at,
    'opened_at', opened_at,
    'signed_at', signed_at,
    'declined_at', declined_at,
    'decline_reason', decline_reason,
    'invalidated_at', invalidated_at,
    'ip_address', ip_address,
    'user_agent', user_agent,
    'representing_as_invited', representing_as_invited,
    'representing_as_signed', representing_as_signed,
    'representing_role', representing_role,
    'representing_entity_id', representing_entity_id,
    'email_sent', CASE WHEN email_sent THEN json('true') ELSE json('false') END,
    'email_error', email_error,
    'verification_method', verification_method,
    'signature_image_blob', signature_image_blob,
    'signature_position', signature_position)) AS json
  FROM signers GROUP BY request_id;

CREATE VIEW event_json_arrays AS
  SELECT request_id, json_group_array(json_object(
    'id', id,
    'signer_id', nullif(hex(signer_id), ''),
    'seq', seq,
    'type', type,
    'created_at', created_at,
    'data', data,
    'prev_hash', prev_hash,
    'hash', hash)) AS json
  FROM events GROUP BY request_id;

CREATE TRIGGER signers_json_insert AFTER INSERT ON signers BEGIN
  UPDATE signature_requests SET signers_json = coalesce(
    (SELECT json FROM signer_json_arrays v WHERE v.request_id = NEW.request_id), '[]')
  WHERE id = NEW.request_id;
END;

CREATE TRIGGER signers_json_update AFTER UPDATE ON signers BEGIN
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
