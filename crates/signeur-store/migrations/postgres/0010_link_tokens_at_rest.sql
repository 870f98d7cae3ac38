-- Signing-link tokens at rest (issue 14): `access_token` now holds the token encrypted with
-- the master key ("sealed:v1:" + base64 of nonce ‖ XChaCha20-Poly1305 ciphertext), and links
-- are looked up by `access_token_hash` (hex SHA-256 of the token). Rows written before this
-- migration keep their plain token until the server's start-up pass seals them (it needs the
-- master key, which SQL has not); until then they are found by the token itself.
ALTER TABLE signers ADD COLUMN access_token_hash TEXT;
CREATE UNIQUE INDEX signers_access_token_hash ON signers (access_token_hash);

DROP VIEW signer_json_arrays;

CREATE OR REPLACE FUNCTION signeur_signer_part(s signers) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT json_build_object(
    'id', s.id,
    'position', s.position,
    'email', s.email,
    'name', s.name,
    'name_as_signed', s.name_as_signed,
    'locale', s.locale,
    'access_token', s.access_token,
    'access_token_hash', s.access_token_hash,
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

CREATE VIEW signer_json_arrays AS
  SELECT request_id, json_agg(signeur_signer_part(s))::text AS json
  FROM signers s GROUP BY request_id;

UPDATE signature_requests SET signers_json = coalesce(
  (SELECT json FROM signer_json_arrays v WHERE v.request_id = signature_requests.id), '[]');
