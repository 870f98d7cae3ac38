//! Signing-link tokens at rest: the API hands a link's token out again on every read (the
//! seed's `access_token` and `sign_url`), so it is kept retrievable, but encrypted with the
//! master key; links are found by the token's SHA-256, never by the token itself. A row
//! written before migration 0010 holds its token in plain text until [`Service::seal_plain_link_tokens`]
//! (run at start-up) seals it; reading one meanwhile still works.

use base64::Engine as _;
use sha2::Digest as _;
use signeur_store::SignerRow;

use crate::model::Signer;
use crate::{Result, Service, ServiceError};

const PREFIX: &str = "sealed:v1:";
const PURPOSE: &str = "link token";
/// Signers sealed per batch by the start-up pass.
const BATCH: i64 = 500;

/// How a link (and a session's one-time token, and a retired link) is looked up: hex SHA-256
/// of its token.
pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl Service {
    /// A token as it is stored, and its lookup hash.
    pub(crate) fn seal_link_token(&self, token: &str) -> (String, String) {
        let sealed = self.keys.encrypt(PURPOSE, token.as_bytes());
        let stored = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed)
        );
        (stored, token_hash(token))
    }

    /// The token of a stored link (a plain one, from before migration 0010, as it is).
    pub(crate) fn open_link_token(&self, stored: &str) -> Result<String> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64)
            .ok()
            .and_then(|data| self.keys.decrypt(PURPOSE, &data))
            .and_then(|plain| String::from_utf8(plain).ok())
            .ok_or_else(|| {
                ServiceError::Internal(anyhow::anyhow!(
                    "a stored signing-link token does not decrypt with the master key"
                ))
            })
    }

    /// The signing link of a signer row.
    pub(crate) fn sign_url_of(&self, signer: &SignerRow) -> Result<String> {
        Ok(self.sign_url(&self.open_link_token(&signer.access_token)?))
    }

    /// The signer whose current link carries `token` (by its hash; a row not yet sealed by
    /// the start-up pass by the token itself).
    pub(crate) async fn signer_by_link_token(&self, token: &str) -> Result<Option<SignerRow>> {
        Ok(self.db.signer_by_token(&token_hash(token), token).await?)
    }

    /// The read model of a signer: its link token opened.
    pub(crate) fn signer_model(&self, row: SignerRow) -> Result<Signer> {
        let token = self.open_link_token(&row.access_token)?;
        Ok(Signer::from_row(row, token))
    }

    pub(crate) fn signer_models(&self, rows: Vec<SignerRow>) -> Result<Vec<Signer>> {
        rows.into_iter().map(|r| self.signer_model(r)).collect()
    }

    /// Start-up: seals every link token still stored in plain text (rows from before
    /// migration 0010), a batch at a time, each under its request's lock like any other
    /// change of a signer. Safe to run on several nodes at once. Returns how many it sealed.
    pub async fn seal_plain_link_tokens(&self) -> Result<u64> {
        let mut sealed = 0;
        loop {
            let batch = self.db.signers_with_plain_tokens(BATCH).await?;
            if batch.is_empty() {
                return Ok(sealed);
            }
            let mut progressed = 0;
            for (org_id, request_id, signer_id, plain) in batch {
                let (stored, hash) = self.seal_link_token(&plain);
                let mut tx = self.db.begin().await?;
                tx.lock_request(org_id, request_id).await?;
                if tx
                    .seal_plain_token(signer_id, &plain, &stored, &hash)
                    .await?
                {
                    progressed += 1;
                }
                tx.commit().await?;
            }
            sealed += progressed;
            // Rows changed meanwhile by another node are left to it.
            if progressed == 0 {
                return Ok(sealed);
            }
        }
    }
}
