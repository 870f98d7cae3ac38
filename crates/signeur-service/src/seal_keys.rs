//! The sealing identity of an organization: by default a P-256 key and a self-signed
//! certificate (subject: the organization's name), generated once with rcgen and stored in the
//! database with the private key encrypted by the master key, so every node seals with the
//! same identity. A configured PKCS#12 (`SIGNEUR_SEAL_P12`, e.g. from an AATL or qualified
//! trust-service provider) takes precedence for every organization.

use chrono::{Datelike, Duration};
use uuid::Uuid;

use signeur_store::SealKeyRow;

use crate::{Result, Service, ServiceError};

const PURPOSE: &str = "seal-key";
/// Validity of a generated certificate.
const VALIDITY_YEARS: i32 = 10;

/// A certificate (DER, leaf first) and its private key (PKCS#8 DER).
#[derive(Clone)]
pub struct SealIdentity {
    pub certificate_chain: Vec<Vec<u8>>,
    pub private_key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SealIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealIdentity")
            .field("certificates", &self.certificate_chain.len())
            .finish_non_exhaustive()
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("seal key: {e}"))
}

/// A new P-256 key and a self-signed certificate naming `org_name`, for document signing.
pub fn generate_identity(
    org_name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<u8>, Vec<u8>)> {
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(internal)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(internal)?;
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("{org_name} (Signeur seal, self-signed)"),
    );
    dn.push(DnType::OrganizationName, org_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    // Document signing (1.3.6.1.5.5.7.3.36), as Adobe and the PAdES validators expect.
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![
        1, 3, 6, 1, 5, 5, 7, 3, 36,
    ])];
    let start = now - Duration::days(1);
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(
        start.year() + VALIDITY_YEARS,
        start.month() as u8,
        start.day().min(28) as u8,
    );
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let cert = params.self_signed(&key).map_err(internal)?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}

/// Reads the sealing identity from a PKCS#12 file's bytes: its private key and certificate
/// chain (leaf first). The key must be ECDSA P-256 or RSA, and the leaf must certify it
/// (checked when the signer is built).
pub fn identity_from_pkcs12(data: &[u8], password: &str) -> Result<SealIdentity> {
    let invalid = |e: &dyn std::fmt::Display| {
        ServiceError::Internal(anyhow::anyhow!("SIGNEUR_SEAL_P12: {e}"))
    };
    let store = p12_keystore::KeyStore::from_pkcs12(data, password).map_err(|e| invalid(&e))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| invalid(&"the file holds no private key with a certificate"))?;
    let certificate_chain: Vec<Vec<u8>> =
        chain.chain().iter().map(|c| c.as_der().to_vec()).collect();
    if certificate_chain.is_empty() {
        return Err(invalid(&"the private key has no certificate"));
    }
    let identity = SealIdentity {
        certificate_chain,
        private_key_pkcs8: chain.key().to_vec(),
    };
    identity.signer()?;
    Ok(identity)
}

impl SealIdentity {
    /// The signer for this identity (ECDSA P-256, else RSA).
    pub fn signer(&self) -> Result<signeur_pdf::RingSigner> {
        signeur_pdf::RingSigner::ecdsa_p256_from_pkcs8(
            &self.private_key_pkcs8,
            self.certificate_chain.clone(),
        )
        .or_else(|_| {
            signeur_pdf::RingSigner::rsa_from_pkcs8(
                &self.private_key_pkcs8,
                self.certificate_chain.clone(),
            )
        })
        .map_err(|e| internal(format!("the key cannot sign with its certificate: {e}")))
    }
}

impl Service {
    /// Seals every organization's documents with this identity instead of generated ones.
    pub fn with_seal_identity(mut self, identity: SealIdentity) -> Self {
        self.seal_override = Some(std::sync::Arc::new(identity));
        self
    }

    /// The organization's sealing identity: the configured one, or its own generated on
    /// first use.
    pub async fn seal_identity(&self, org_id: Uuid) -> Result<SealIdentity> {
        if let Some(identity) = &self.seal_override {
            return Ok(identity.as_ref().clone());
        }
        if let Some(row) = self.db.get_seal_key(org_id).await? {
            return self.open_identity(row);
        }
        let org = self
            .db
            .get_org(org_id)
            .await?
            .ok_or(ServiceError::NotFound("Organization"))?;
        let now = self.clock.now();
        let (cert, pkcs8) = generate_identity(&org.name, now)?;
        let row = SealKeyRow {
            org_id,
            certificate_der: cert,
            private_key_enc: self.keys.encrypt(PURPOSE, &pkcs8),
            created_at: now,
        };
        if !self.db.insert_seal_key(&row).await? {
            // Another node got there first: use theirs.
            let stored = self
                .db
                .get_seal_key(org_id)
                .await?
                .ok_or_else(|| internal("vanished after a conflicting insert"))?;
            return self.open_identity(stored);
        }
        tracing::info!(organization = %org_id, "generated a self-signed sealing certificate");
        self.open_identity(row)
    }

    fn open_identity(&self, row: SealKeyRow) -> Result<SealIdentity> {
        let pkcs8 = self
            .keys
            .decrypt(PURPOSE, &row.private_key_enc)
            .ok_or_else(|| internal("the stored key does not decrypt with this master key"))?;
        Ok(SealIdentity {
            certificate_chain: vec![row.certificate_der],
            private_key_pkcs8: pkcs8,
        })
    }
}
