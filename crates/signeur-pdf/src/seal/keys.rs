//! The signing key: the [`SealSigner`] trait, behind which the private key stays (an HSM or a
//! remote signing service can implement it), and [`RingSigner`], the in-process
//! implementation for a PKCS#8 key held in memory.

use const_oid::db::rfc5912;
use der::Any;
use spki::AlgorithmIdentifierOwned;

use super::SealError;
use super::cms::parse_chain;

/// The signature algorithm a [`SealSigner`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealAlgorithm {
    /// ECDSA over P-256 with SHA-256; the signature is the DER `Ecdsa-Sig-Value`.
    EcdsaP256Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsaPkcs1Sha256,
}

impl SealAlgorithm {
    pub(super) fn signature_algorithm(self) -> AlgorithmIdentifierOwned {
        match self {
            SealAlgorithm::EcdsaP256Sha256 => AlgorithmIdentifierOwned {
                oid: rfc5912::ECDSA_WITH_SHA_256,
                parameters: None,
            },
            SealAlgorithm::RsaPkcs1Sha256 => AlgorithmIdentifierOwned {
                oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                parameters: Some(Any::null()),
            },
        }
    }
}

/// A signing key and its certificate chain. The key never leaves the implementation.
pub trait SealSigner {
    /// The certificate chain, DER, leaf (the sealing certificate) first.
    fn certificate_chain(&self) -> &[Vec<u8>];
    /// The algorithm [`SealSigner::sign`] uses.
    fn algorithm(&self) -> SealAlgorithm;
    /// Signs `data` (the DER of the signed attributes; the implementation hashes it).
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// A failure inside a [`SealSigner`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignerError(pub String);

enum RingKey {
    Ecdsa(ring::signature::EcdsaKeyPair),
    Rsa(ring::signature::RsaKeyPair),
}

/// A [`SealSigner`] holding a PKCS#8 private key in memory, signing with `ring`.
pub struct RingSigner {
    key: RingKey,
    chain: Vec<Vec<u8>>,
    rng: ring::rand::SystemRandom,
}

impl std::fmt::Debug for RingSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSigner")
            .field("algorithm", &self.algorithm())
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl RingSigner {
    /// An ECDSA P-256 key (PKCS#8 DER) and its chain (DER, leaf first).
    pub fn ecdsa_p256_from_pkcs8(pkcs8: &[u8], chain: Vec<Vec<u8>>) -> Result<Self, SealError> {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8,
            &rng,
        )
        .map_err(|e| SealError::Certificate(format!("not a P-256 PKCS#8 key: {e}")))?;
        Self::checked(RingKey::Ecdsa(key), chain, rng)
    }

    /// An RSA key (PKCS#8 DER) and its chain (DER, leaf first).
    pub fn rsa_from_pkcs8(pkcs8: &[u8], chain: Vec<Vec<u8>>) -> Result<Self, SealError> {
        let key = ring::signature::RsaKeyPair::from_pkcs8(pkcs8)
            .map_err(|e| SealError::Certificate(format!("not an RSA PKCS#8 key: {e}")))?;
        Self::checked(RingKey::Rsa(key), chain, ring::rand::SystemRandom::new())
    }

    /// Refuses a chain whose leaf does not certify this key.
    fn checked(
        key: RingKey,
        chain: Vec<Vec<u8>>,
        rng: ring::rand::SystemRandom,
    ) -> Result<Self, SealError> {
        use ring::signature::KeyPair;
        let certs = parse_chain(&chain)?;
        let leaf_key = certs[0]
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes();
        // ring's public keys are exactly the SPKI bit-string contents (an uncompressed EC
        // point, or the DER RSAPublicKey).
        let public = match &key {
            RingKey::Ecdsa(k) => k.public_key().as_ref(),
            RingKey::Rsa(k) => k.public_key().as_ref(),
        };
        if public != leaf_key {
            return Err(SealError::Certificate(
                "the leaf certificate does not certify the private key".into(),
            ));
        }
        Ok(RingSigner { key, chain, rng })
    }
}

impl SealSigner for RingSigner {
    fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    fn algorithm(&self) -> SealAlgorithm {
        match self.key {
            RingKey::Ecdsa(_) => SealAlgorithm::EcdsaP256Sha256,
            RingKey::Rsa(_) => SealAlgorithm::RsaPkcs1Sha256,
        }
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError> {
        match &self.key {
            RingKey::Ecdsa(k) => k
                .sign(&self.rng, data)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| SignerError(format!("ECDSA signing failed: {e}"))),
            RingKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &ring::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    data,
                    &mut sig,
                )
                .map_err(|e| SignerError(format!("RSA signing failed: {e}")))?;
                Ok(sig)
            }
        }
    }
}
