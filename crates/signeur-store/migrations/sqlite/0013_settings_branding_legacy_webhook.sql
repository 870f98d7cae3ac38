-- Settings (issues 15 and 16): the organization's default locale for new signers, its
-- branding (JSON {name, color, logo_base64}) and the legacy single-URL webhook, honoured
-- when the organization has no webhook endpoints. Its secret is encrypted with the master
-- key like an endpoint's. Legacy deliveries are webhook_deliveries rows whose endpoint_id is
-- the organization's own id (that column has no foreign key): history and retries work
-- unchanged, and no endpoint row exists for the API to list.
ALTER TABLE org_settings ADD COLUMN default_locale TEXT;
ALTER TABLE org_settings ADD COLUMN branding TEXT;
ALTER TABLE org_settings ADD COLUMN legacy_webhook_url TEXT;
ALTER TABLE org_settings ADD COLUMN legacy_webhook_secret BLOB;
