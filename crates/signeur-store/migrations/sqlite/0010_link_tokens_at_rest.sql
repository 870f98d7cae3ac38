-- Signing-link tokens at rest (issue 14): `access_token` now holds the token encrypted with
-- the master key ("sealed:v1:" + base64 of nonce ‖ XChaCha20-Poly1305 ciphertext), and links
-- are looked up by `access_token_hash` (hex SHA-256 of the token). Rows written before this
-- migration keep their plain token until the server's start-up pass seals them (it needs the
-- master key, which SQL has not); until then they are found by the token itself.
ALTER TABLE signers ADD COLUMN access_token_hash TEXT;
CREATE UNIQUE INDEX signers_access_token_hash ON signers (access_token_hash);

DROP VIEW signer_json_arrays;

CREATE VIEW signer_json_arrays AS
  SELECT request_id, json_group_array(json_object(
    'id', hex(id),
    'position', position,
    'email', email,
    'name', name,
    'name_as_signed', name_as_signed,
    'locale', locale,
    'access_token', access_token,
    'access_token_hash', access_token_hash,
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

UPDATE signature_requests SET signers_json = coalesce(
  (SELECT json FROM signer_json_arrays v WHERE v.request_id = signature_requests.id), '[]');
