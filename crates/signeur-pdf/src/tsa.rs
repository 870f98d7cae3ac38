//! RFC 3161 time-stamp protocol, bytes only: the request for a signature value and the check
//! of the authority's answer (status granted, message imprint and nonce as asked). Sending it
//! over HTTP is the caller's job.

use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use const_oid::db::rfc5912;
use der::asn1::{Int, OctetString};
use der::{Any, Decode, Encode};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

/// Why a time-stamp answer is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TsaError {
    #[error("the time-stamp request could not be encoded: {0}")]
    Request(String),
    #[error("the time-stamp response is not a valid RFC 3161 response: {0}")]
    Malformed(String),
    #[error("the time-stamp authority refused the request (status {0})")]
    Refused(u8),
    #[error("the time-stamp token is for another message imprint")]
    WrongImprint,
    #[error("the time-stamp token's nonce is not the one sent")]
    WrongNonce,
}

fn imprint(message: &[u8]) -> Result<MessageImprint, TsaError> {
    Ok(MessageImprint {
        hash_algorithm: AlgorithmIdentifier {
            oid: rfc5912::ID_SHA_256,
            parameters: None,
        },
        hashed_message: OctetString::new(Sha256::digest(message).to_vec())
            .map_err(|e| TsaError::Request(e.to_string()))?,
    })
}

/// A DER `TimeStampReq` for SHA-256 of `message`, asking for the TSA certificate, with
/// `nonce` (positive, big-endian bytes).
pub fn timestamp_request(message: &[u8], nonce: &[u8; 8]) -> Result<Vec<u8>, TsaError> {
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: imprint(message)?,
        req_policy: None,
        nonce: Some(positive_int(nonce).map_err(|e| TsaError::Request(e.to_string()))?),
        cert_req: true,
        extensions: None,
    };
    req.to_der().map_err(|e| TsaError::Request(e.to_string()))
}

/// The token of a `TimeStampResp` answering [`timestamp_request`]`(message, nonce)`, as DER
/// (`ContentInfo`), after checking status, imprint and nonce.
pub fn timestamp_token(
    response: &[u8],
    message: &[u8],
    nonce: &[u8; 8],
) -> Result<Vec<u8>, TsaError> {
    let malformed = |e: der::Error| TsaError::Malformed(e.to_string());
    let resp = TimeStampResp::from_der(response).map_err(malformed)?;
    let status = resp.status.status as u8;
    if status > 1 {
        return Err(TsaError::Refused(status));
    }
    let token = resp
        .time_stamp_token
        .ok_or_else(|| TsaError::Malformed("granted without a token".into()))?;
    let info = token_info(&token)?;
    if info.message_imprint != imprint(message)? {
        return Err(TsaError::WrongImprint);
    }
    let sent = positive_int(nonce).map_err(malformed)?;
    let same_nonce = info
        .nonce
        .as_ref()
        .is_some_and(|n| strip(n.as_bytes()) == strip(sent.as_bytes()));
    if !same_nonce {
        return Err(TsaError::WrongNonce);
    }
    token.to_der().map_err(malformed)
}

/// The TSTInfo inside a time-stamp token (a CMS ContentInfo), not checked.
pub(crate) fn token_info(token: &ContentInfo) -> Result<TstInfo, TsaError> {
    let malformed = |e: der::Error| TsaError::Malformed(e.to_string());
    let signed: SignedData = token.content.decode_as().map_err(malformed)?;
    let econtent: &Any = signed
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| TsaError::Malformed("the token has no TSTInfo".into()))?;
    let octets =
        OctetString::from_der(&econtent.to_der().map_err(malformed)?).map_err(malformed)?;
    TstInfo::from_der(octets.as_bytes()).map_err(malformed)
}

/// Whether a token's message imprint is the digest of `message` under the token's algorithm
/// (SHA-256 is what we ask for; other algorithms count as not matching).
pub(crate) fn imprint_matches(info: &TstInfo, message: &[u8]) -> bool {
    imprint(message).is_ok_and(|mine| mine == info.message_imprint)
}

/// The non-negative INTEGER with big-endian magnitude `bytes`, minimally encoded (DER
/// refuses redundant leading zeros; a 0x00 goes first only when the top bit is set).
fn positive_int(bytes: &[u8]) -> der::Result<Int> {
    let magnitude = strip(bytes);
    let mut n = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_none_or(|b| b & 0x80 != 0) {
        n.push(0);
    }
    n.extend_from_slice(magnitude);
    Int::new(&n)
}

/// An integer's magnitude bytes without leading zeros.
fn strip(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every nonce encodes, whatever its leading bytes (DER wants minimal integers).
    #[test]
    fn requests_encode_for_any_nonce() {
        for nonce in [
            [0u8; 8],
            [0, 0, 0, 1, 2, 3, 4, 5],
            [0x7f, 0, 0, 0, 0, 0, 0, 0],
            [0x80, 0, 0, 0, 0, 0, 0, 0],
            [0xff; 8],
        ] {
            let req = timestamp_request(b"signature", &nonce).unwrap();
            let parsed = TimeStampReq::from_der(&req).unwrap();
            let n = parsed.nonce.unwrap();
            assert_eq!(strip(n.as_bytes()), strip(&nonce), "{nonce:?}");
        }
    }
}
