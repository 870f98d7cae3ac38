-- Where a signer's visible signature block goes, when the request names it: JSON {page, x, y}
-- (points from the page's top-left corner; null: on the last page where it covers no content).
ALTER TABLE signers ADD COLUMN signature_position TEXT;
