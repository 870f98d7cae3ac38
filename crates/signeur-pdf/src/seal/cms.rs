//! The CMS side of the seal: a detached CMS `SignedData` (RFC 5652) over the SHA-256 digest of
//! the byte ranges, as PAdES baseline signatures want it (ETSI EN 319 142-1):
//!
//! - one `SignerInfo` identified by issuer and serial number, digest algorithm SHA-256;
//! - signed attributes content-type (`id-data`), message-digest and ESS
//!   signing-certificate-v2 (RFC 5035: the SHA-256 of the signing certificate, with its issuer
//!   and serial number), and **no** signing-time, which PAdES forbids (the claimed time is the
//!   signature dictionary's `/M` only);
//! - the certificate chain in `certificates`;
//! - for PAdES B-T, one unsigned attribute id-aa-signatureTimeStampToken: an RFC 3161 token
//!   over the signature value.
//!
//! It is built in two steps, [`signer_info`] (which signs) and [`content_info`] (which adds the
//! unsigned attributes and assembles), so that a time-stamp over the signature value can be
//! obtained in between.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier,
    SignerInfo, SignerInfos, UnsignedAttributes,
};
use const_oid::ObjectIdentifier;
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode, Sequence};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::serial_number::SerialNumber;

use super::{SealError, SealSigner, der_err};

/// `id-aa-signingCertificateV2` (RFC 5035).
pub const ID_AA_SIGNING_CERTIFICATE_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// `id-aa-signatureTimeStampToken` (RFC 3161, appendix A).
pub const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

/// ESS `SigningCertificateV2` (RFC 5035), without the optional policies: the value of the
/// signed attribute [`ID_AA_SIGNING_CERTIFICATE_V2`] this crate writes.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
}

/// ESS `ESSCertIDv2`; `hashAlgorithm` is omitted, i.e. the SHA-256 default.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// ESS `IssuerSerial`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: Vec<GeneralName>,
    pub serial_number: SerialNumber,
}

/// The certificates of a chain (DER, leaf first); an empty chain is refused.
pub(super) fn parse_chain(chain: &[Vec<u8>]) -> Result<Vec<Certificate>, SealError> {
    if chain.is_empty() {
        return Err(SealError::Certificate("the chain is empty".into()));
    }
    chain
        .iter()
        .map(|der| Certificate::from_der(der).map_err(|e| SealError::Certificate(e.to_string())))
        .collect()
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, SealError> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value]).map_err(der_err)?,
    })
}

fn sha256_id() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: rfc5912::ID_SHA_256,
        parameters: None,
    }
}

/// Builds and signs the `SignerInfo` for a detached signature over content with SHA-256
/// `digest`; it has no unsigned attributes yet (a B-T time-stamp goes there).
pub(super) fn signer_info(
    digest: &[u8],
    chain: &[Certificate],
    signer: &dyn SealSigner,
) -> Result<SignerInfo, SealError> {
    let leaf = chain
        .first()
        .ok_or_else(|| SealError::Certificate("the chain is empty".into()))?;
    let leaf_der = leaf.to_der().map_err(der_err)?;

    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            cert_hash: OctetString::new(Sha256::digest(&leaf_der).to_vec()).map_err(der_err)?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(
                    leaf.tbs_certificate.issuer.clone(),
                )],
                serial_number: leaf.tbs_certificate.serial_number.clone(),
            }),
        }],
    };
    let signed_attrs: SignedAttributes = SetOfVec::try_from(vec![
        attribute(
            rfc5911::ID_CONTENT_TYPE,
            Any::encode_from(&rfc5911::ID_DATA).map_err(der_err)?,
        )?,
        attribute(
            rfc5911::ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest.to_vec()).map_err(der_err)?)
                .map_err(der_err)?,
        )?,
        attribute(
            ID_AA_SIGNING_CERTIFICATE_V2,
            Any::encode_from(&ess).map_err(der_err)?,
        )?,
    ])
    .map_err(der_err)?;

    // The signature covers the DER of the attributes as an explicit SET OF (RFC 5652, 5.4).
    let to_sign = signed_attrs.to_der().map_err(der_err)?;
    let signature = signer.sign(&to_sign)?;

    Ok(SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.tbs_certificate.issuer.clone(),
            serial_number: leaf.tbs_certificate.serial_number.clone(),
        }),
        digest_alg: sha256_id(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: signer.algorithm().signature_algorithm(),
        signature: OctetString::new(signature).map_err(der_err)?,
        unsigned_attrs: None,
    })
}

/// Wraps `signer_info` (with `unsigned_attrs` added, if any) in a detached `SignedData`
/// `ContentInfo` carrying `chain`; returns its DER.
pub(super) fn content_info(
    mut signer_info: SignerInfo,
    chain: &[Certificate],
    unsigned_attrs: Option<UnsignedAttributes>,
) -> Result<Vec<u8>, SealError> {
    if unsigned_attrs.is_some() {
        signer_info.unsigned_attrs = unsigned_attrs;
    }
    let certificates = SetOfVec::try_from(
        chain
            .iter()
            .cloned()
            .map(CertificateChoices::Certificate)
            .collect::<Vec<_>>(),
    )
    .map_err(der_err)?;
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![sha256_id()]).map_err(der_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet(certificates)),
        crls: None,
        signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info]).map_err(der_err)?),
    };
    ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed_data).map_err(der_err)?,
    }
    .to_der()
    .map_err(der_err)
}

/// The unsigned attributes of PAdES B-T: id-aa-signatureTimeStampToken holding `token` (a DER
/// `TimeStampToken`).
pub(super) fn timestamp_attributes(token: &[u8]) -> Result<UnsignedAttributes, SealError> {
    let value = Any::from_der(token).map_err(der_err)?;
    SetOfVec::try_from(vec![attribute(ID_AA_SIGNATURE_TIME_STAMP_TOKEN, value)?]).map_err(der_err)
}
