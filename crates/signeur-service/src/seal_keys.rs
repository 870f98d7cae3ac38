//! The sealing identity of an organization: by default a P-256 key and a self-signed
//! certificate (subject: the organization's name), generated once with rcgen and stored in the
//! database with the private key encrypted by the master key, so every node seals with the
//! same identity. (A configured PKCS#12, `SIGNEUR_SEAL_P12`, will take precedence.)

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

impl Service {
    /// The organization's sealing identity, generated on first use.
    pub async fn seal_identity(&self, org_id: Uuid) -> Result<SealIdentity> {
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
