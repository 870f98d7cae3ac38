-- The signing pages: the drawn signature and how the signer was verified.
ALTER TABLE signers ADD COLUMN signature_image_blob TEXT;
ALTER TABLE signers ADD COLUMN verification_method TEXT;
