//! PAdES B-B sealing against the fixture files, checked by our own parsing and, when installed,
//! by `qpdf --check`, pyHanko (`pyhanko sign validate`) and the PAdES checker script
//! (`$SIGNEUR_PADES_CHECK`, default `.ci/pades/pades_check.py` in the repository).

use std::path::PathBuf;

use chrono::{TimeZone, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use const_oid::db::{rfc5911, rfc5912};
use der::asn1::OctetString;
use der::{Encode, SliceReader};
use sha2::{Digest, Sha256};
use signeur_pdf::{
    ID_AA_SIGNING_CERTIFICATE_V2, RingSigner, SealError, SealOptions, SigningCertificateV2, seal,
};

#[macro_use]
mod common;
use common::{
    TestKey, earlier_signer_certs, pades_check, pdfsig_check, pyhanko_validate, qpdf_check,
    test_key, test_key_rsa,
};

fn options() -> SealOptions {
    let mut opts = SealOptions::new(Utc.with_ymd_and_hms(2026, 3, 14, 15, 9, 26).unwrap());
    opts.reason = Some("Sealed by Signeur".into());
    opts.name = Some("Signeur Test Seal".into());
    opts
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// Decodes a DER `ContentInfo` from the start of `bytes`, ignoring the zero padding after it.
fn parse_cms(bytes: &[u8]) -> SignedData {
    let mut reader = SliceReader::new(bytes).unwrap();
    let info: ContentInfo = der::Decode::decode(&mut reader).unwrap();
    assert_eq!(info.content_type, rfc5911::ID_SIGNED_DATA);
    info.content.decode_as::<SignedData>().unwrap()
}

/// The checks that need nothing but this crate's dependencies. Returns the new signature's CMS.
fn check_sealed(input: &[u8], output: &[u8], key: &TestKey, contents_size: usize) -> SignedData {
    let cert_der = key.cert_der.as_slice();
    assert!(output.starts_with(input), "the input is not a prefix");
    let tail = &output[input.len()..];

    // Exactly one /ByteRange and one /Type /Sig dictionary in the update.
    let ranges = find_all(tail, b"/ByteRange");
    assert_eq!(ranges.len(), 1, "one /ByteRange in the update");
    assert_eq!(find_all(tail, b"/ETSI.CAdES.detached").len(), 1);
    assert_eq!(find_all(tail, b"/M(D:").len(), 1, "/M exactly once");
    assert_eq!(find_all(tail, b"/SigFlags 3").len(), 1);
    assert_eq!(find_all(tail, b"/Rect[0 0 0 0]").len(), 1);
    let at = input.len() + ranges[0];
    let open = at + output[at..].iter().position(|&b| b == b'[').unwrap();
    let close = open + output[open..].iter().position(|&b| b == b']').unwrap();
    let numbers: Vec<usize> = std::str::from_utf8(&output[open + 1..close])
        .unwrap()
        .split_ascii_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let [start, len1, start2, len2] = numbers[..] else {
        panic!("four ByteRange numbers, got {numbers:?}")
    };
    assert_eq!(start, 0);
    assert!(len1 > input.len(), "the gap lies in the update");
    assert_eq!(start2 + len2, output.len(), "the ranges reach the end");
    assert_eq!(output[len1], b'<');
    assert_eq!(output[start2 - 1], b'>');
    assert_eq!(
        start2 - len1,
        2 * contents_size + 2,
        "the gap is exactly <…>"
    );
    let before = &output[..len1];
    assert!(
        before.trim_ascii_end().ends_with(b"/Contents"),
        "the gap is the /Contents value"
    );
    let hex = &output[len1 + 1..start2 - 1];
    assert!(hex.iter().all(u8::is_ascii_hexdigit));
    let der = hex::decode(hex).unwrap();

    let signed = parse_cms(&der);
    assert!(signed.encap_content_info.econtent.is_none(), "detached");
    assert_eq!(signed.encap_content_info.econtent_type, rfc5911::ID_DATA);
    let certs: Vec<Vec<u8>> = signed
        .certificates
        .as_ref()
        .expect("certificates included")
        .0
        .iter()
        .map(|c| c.to_der().unwrap())
        .collect();
    // CertificateChoices::Certificate encodes as the certificate itself.
    assert!(certs.iter().any(|c| c == cert_der), "the chain is included");
    let infos = signed.signer_infos.0.as_slice();
    assert_eq!(infos.len(), 1, "exactly one SignerInfo");
    let info = &infos[0];
    assert_eq!(info.digest_alg.oid, rfc5912::ID_SHA_256);
    assert_eq!(info.signature_algorithm.oid, key.signature_oid);
    assert!(info.unsigned_attrs.is_none());
    let attrs = info.signed_attrs.as_ref().expect("signed attributes");
    let oids: Vec<_> = attrs.iter().map(|a| a.oid).collect();
    assert_eq!(oids.len(), 3, "{oids:?}");
    assert!(!oids.contains(&rfc5911::ID_SIGNING_TIME), "no signing-time");
    let value = |oid| {
        let attr = attrs.iter().find(|a| a.oid == oid).expect("attribute");
        assert_eq!(attr.values.len(), 1);
        attr.values.get(0).unwrap().clone()
    };
    assert_eq!(
        value(rfc5911::ID_CONTENT_TYPE)
            .decode_as::<der::asn1::ObjectIdentifier>()
            .unwrap(),
        rfc5911::ID_DATA
    );
    let mut hasher = Sha256::new();
    hasher.update(&output[..len1]);
    hasher.update(&output[start2..]);
    assert_eq!(
        value(rfc5911::ID_MESSAGE_DIGEST)
            .decode_as::<OctetString>()
            .unwrap()
            .as_bytes(),
        hasher.finalize().as_slice(),
        "message digest = SHA-256 of the byte ranges"
    );
    // Our ESSCertIDv2 starts with the OCTET STRING, so this decodes only if hashAlgorithm is
    // omitted (the SHA-256 default).
    let ess: SigningCertificateV2 = value(ID_AA_SIGNING_CERTIFICATE_V2).decode_as().unwrap();
    assert_eq!(ess.certs.len(), 1);
    assert_eq!(
        ess.certs[0].cert_hash.as_bytes(),
        Sha256::digest(cert_der).as_slice()
    );
    signed
}

/// The field name `/T (…)` of the field in the update.
fn our_field_name(tail: &[u8]) -> String {
    let at = find_all(tail, b"/T(")[0] + 3;
    let end = at + tail[at..].iter().position(|&b| b == b')').unwrap();
    String::from_utf8(tail[at..end].to_vec()).unwrap()
}

fn seal_and_check(name: &str, input: &[u8], hybrid: bool) {
    seal_and_check_with(&test_key(), name, input, hybrid);
}

fn seal_and_check_with(key: &TestKey, name: &str, input: &[u8], hybrid: bool) {
    let opts = options();
    let output = seal(input, &key.signer, &opts).unwrap();
    check_sealed(input, &output, key, opts.contents_size);

    let path = key.dir.path().join(name);
    std::fs::write(&path, &output).unwrap();
    if let Some(keep) = std::env::var_os("SIGNEUR_SEAL_KEEP") {
        let keep = PathBuf::from(keep);
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(&path, keep.join(name)).unwrap();
        std::fs::copy(key.cert_pem(), keep.join(format!("{name}.cert.pem"))).unwrap();
    }

    // The sealed file parses back with the same page count, and the crate accepts it.
    let info = signeur_pdf::inspect(&output).unwrap();
    assert_eq!(
        info.page_count,
        signeur_pdf::inspect(input).unwrap().page_count
    );

    let mut trust = vec![key.cert_pem()];
    trust.extend(earlier_signer_certs(input, key.dir.path()));
    qpdf_check(&path);
    pdfsig_check(&path);
    let ours = our_field_name(&output[input.len()..]);
    pyhanko_validate(&path, &trust, hybrid, &ours, false);
    if hybrid {
        eprintln!("note: pades_check.py reads strictly and pyHanko refuses hybrid files: skipped");
    } else {
        pades_check(&path, &trust, &ours, false);
    }
}

#[test]
fn seals_one_page() {
    seal_and_check("one-page.pdf", fixture!("one-page.pdf"), false);
}

#[test]
fn seals_object_streams_with_xref_stream() {
    let input = fixture!("objstm.pdf");
    assert!(find_all(input, b"/Type/XRef").len() + find_all(input, b"/Type /XRef").len() > 0);
    seal_and_check("objstm.pdf", input, false);
}

#[test]
fn seals_hybrid_xref() {
    seal_and_check("hybrid-xref.pdf", fixture!("hybrid-xref.pdf"), true);
}

#[test]
fn seals_incremental() {
    seal_and_check("incremental.pdf", fixture!("incremental.pdf"), false);
}

#[test]
fn seals_three_pages() {
    seal_and_check("three-pages.pdf", fixture!("three-pages.pdf"), false);
}

#[test]
fn seals_approval_signed_keeping_the_earlier_signature() {
    seal_and_check(
        "approval-signed.pdf",
        fixture!("approval-signed.pdf"),
        false,
    );
}

#[test]
fn seals_certified_form_filling() {
    seal_and_check(
        "certified-form-filling.pdf",
        fixture!("certified-form-filling.pdf"),
        false,
    );
}

#[test]
fn seals_with_rsa() {
    seal_and_check_with(
        &test_key_rsa(),
        "one-page-rsa.pdf",
        fixture!("one-page.pdf"),
        false,
    );
}

#[test]
fn seals_twice() {
    let key = test_key();
    let opts = options();
    let once = seal(fixture!("one-page.pdf"), &key.signer, &opts).unwrap();
    let twice = seal(&once, &key.signer, &opts).unwrap();
    check_sealed(&once, &twice, &key, opts.contents_size);
    let text = String::from_utf8_lossy(&twice);
    assert!(text.contains("(Signature1)") && text.contains("(Signature2)"));
    let path = key.dir.path().join("twice.pdf");
    std::fs::write(&path, &twice).unwrap();
    qpdf_check(&path);
    pdfsig_check(&path);
    pyhanko_validate(&path, &[key.cert_pem()], false, "Signature2", false);
    pades_check(&path, &[key.cert_pem()], "Signature2", false);
}

#[test]
fn contents_size_is_a_parameter() {
    let key = test_key();
    let mut opts = options();
    opts.contents_size = 10_000;
    let input = fixture!("one-page.pdf");
    let output = seal(input, &key.signer, &opts).unwrap();
    check_sealed(input, &output, &key, 10_000);

    opts.contents_size = 100;
    assert!(matches!(
        seal(input, &key.signer, &opts),
        Err(SealError::Options(_))
    ));
}

#[test]
fn refuses_a_key_that_does_not_match_the_certificate() {
    let key = test_key();
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let err = RingSigner::ecdsa_p256_from_pkcs8(&other.serialize_der(), vec![key.cert_der.clone()])
        .unwrap_err();
    assert!(matches!(err, SealError::Certificate(_)), "{err:?}");
}

#[test]
fn refuses_encrypted_input() {
    let key = test_key();
    let err = seal(
        fixture!("encrypted-user-password.pdf"),
        &key.signer,
        &options(),
    )
    .unwrap_err();
    assert!(matches!(err, SealError::Pdf(_)), "{err:?}");
}

/// The newest trailer's `/ID`, as lopdf reads it.
fn trailer_id(pdf: &[u8]) -> Option<Vec<Vec<u8>>> {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let id = doc.trailer.get(b"ID").ok()?.as_array().unwrap();
    Some(id.iter().map(|s| s.as_str().unwrap().to_vec()).collect())
}

#[test]
fn the_widget_has_an_empty_appearance_and_is_print_locked() {
    let key = test_key();
    for input in [fixture!("one-page.pdf"), fixture!("objstm.pdf")] {
        let output = seal(input, &key.signer, &options()).unwrap();
        let doc = lopdf::Document::load_mem(&output).unwrap();
        let catalog = doc.catalog().unwrap();
        let acroform = doc
            .dereference(catalog.get(b"AcroForm").unwrap())
            .unwrap()
            .1
            .as_dict()
            .unwrap();
        let fields = doc
            .dereference(acroform.get(b"Fields").unwrap())
            .unwrap()
            .1
            .as_array()
            .unwrap();
        let field_id = fields.last().unwrap().as_reference().unwrap();
        let field = doc.get_dictionary(field_id).unwrap();
        assert_eq!(field.get(b"FT").unwrap().as_name().unwrap(), b"Sig");
        assert_eq!(field.get(b"F").unwrap().as_i64().unwrap(), 132);
        let ap = field.get(b"AP").unwrap().as_dict().unwrap();
        let normal = ap.get(b"N").unwrap().as_reference().unwrap();
        let stream = doc.get_object(normal).unwrap().as_stream().unwrap();
        assert_eq!(
            stream.dict.get(b"Type").unwrap().as_name().unwrap(),
            b"XObject"
        );
        assert_eq!(
            stream.dict.get(b"Subtype").unwrap().as_name().unwrap(),
            b"Form"
        );
        let bbox: Vec<i64> = stream
            .dict
            .get(b"BBox")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_i64().unwrap())
            .collect();
        assert_eq!(bbox, [0, 0, 0, 0]);
        assert!(stream.content.is_empty());
        // The widget is on page 1.
        let page = *doc.get_pages().get(&1).unwrap();
        let annots = doc
            .dereference(doc.get_dictionary(page).unwrap().get(b"Annots").unwrap())
            .unwrap()
            .1
            .as_array()
            .unwrap();
        assert!(annots.contains(&lopdf::Object::Reference(field_id)));
    }
}

#[test]
fn the_trailer_id_keeps_its_first_element_and_gets_a_new_second() {
    let key = test_key();
    let (mut with_id, mut without_id) = (0, 0);
    for input in [
        fixture!("one-page.pdf"),
        fixture!("objstm.pdf"),
        fixture!("hybrid-xref.pdf"),
        fixture!("incremental.pdf"),
        fixture!("approval-signed.pdf"),
        fixture!("certified-form-filling.pdf"),
    ] {
        let output = seal(input, &key.signer, &options()).unwrap();
        let new = trailer_id(&output).expect("the update has an /ID");
        assert_eq!(new.len(), 2);
        assert!(new.iter().all(|id| !id.is_empty()));
        match trailer_id(input) {
            Some(old) => {
                with_id += 1;
                assert_eq!(new[0], old[0], "the permanent identifier is kept");
                assert_ne!(new[1], old[1], "the changing identifier changes");
            }
            None => {
                without_id += 1;
                assert_eq!(new[0].len(), 16);
                assert_eq!(new[1].len(), 16);
            }
        }
        // A second seal keeps the first element again and renews the second.
        let twice = seal(&output, &key.signer, &options()).unwrap();
        let newer = trailer_id(&twice).unwrap();
        assert_eq!(newer[0], new[0]);
        assert_ne!(newer[1], new[1]);
    }
    assert!(with_id > 0 && without_id > 0, "{with_id} {without_id}");
}

#[test]
fn sealing_is_deterministic_outside_the_signature_value() {
    let key = test_key();
    for input in [fixture!("one-page.pdf"), fixture!("objstm.pdf")] {
        let a = seal(input, &key.signer, &options()).unwrap();
        let b = seal(input, &key.signer, &options()).unwrap();
        assert_eq!(a.len(), b.len());
        let gap_start = input.len() + find_all(&a[input.len()..], b"/Contents<")[0] + 9;
        let gap_end = gap_start + 2 * options().contents_size + 2;
        assert_eq!(a[..gap_start], b[..gap_start]);
        assert_eq!(a[gap_end..], b[gap_end..]);
    }
}

#[test]
fn the_update_has_the_kind_of_cross_reference_section_of_the_input() {
    let key = test_key();
    for (input, stream) in [
        (fixture!("one-page.pdf"), false),
        (fixture!("incremental.pdf"), false),
        (fixture!("hybrid-xref.pdf"), false),
        (fixture!("objstm.pdf"), true),
    ] {
        let output = seal(input, &key.signer, &options()).unwrap();
        let tail = &output[input.len()..];
        assert_eq!(find_all(tail, b"/Type/XRef").len(), usize::from(stream));
        assert_eq!(find_all(tail, b"\nxref\n").len(), usize::from(!stream));
        assert!(find_all(tail, b"/XRefStm").is_empty());
        assert!(tail.ends_with(b"%%EOF\n"));
    }
}

#[test]
fn seals_a_sealed_file_of_each_kind() {
    let key = test_key();
    for (name, input, hybrid) in [
        ("objstm-twice.pdf", fixture!("objstm.pdf"), false),
        ("hybrid-twice.pdf", fixture!("hybrid-xref.pdf"), true),
        ("incremental-twice.pdf", fixture!("incremental.pdf"), false),
        ("approval-twice.pdf", fixture!("approval-signed.pdf"), false),
        ("three-pages-twice.pdf", fixture!("three-pages.pdf"), false),
    ] {
        let once = seal(input, &key.signer, &options()).unwrap();
        seal_and_check_with(&key, name, &once, hybrid);
    }
}

/// Offsets that count from the header after leading junk are read, and the update's count from
/// there too. pyHanko refuses such a file before it looks at signatures ("Illegal PDF header"),
/// so qpdf and pdfsig check it.
#[test]
fn seals_a_file_with_leading_junk() {
    let key = test_key();
    let input = fixture!("leading-junk.pdf");
    let output = seal(input, &key.signer, &options()).unwrap();
    check_sealed(input, &output, &key, options().contents_size);
    assert_eq!(signeur_pdf::inspect(&output).unwrap().page_count, 1);
    let path = key.dir.path().join("leading-junk.pdf");
    std::fs::write(&path, &output).unwrap();
    qpdf_check(&path);
    pdfsig_check(&path);
}

struct FakeTimestamper {
    token: Vec<u8>,
    seen: std::cell::RefCell<Vec<Vec<u8>>>,
}

impl signeur_pdf::Timestamper for FakeTimestamper {
    fn timestamp(&self, signature_value: &[u8]) -> Result<Vec<u8>, signeur_pdf::SignerError> {
        self.seen.borrow_mut().push(signature_value.to_vec());
        if self.token.is_empty() {
            return Err(signeur_pdf::SignerError("no time-stamp authority".into()));
        }
        Ok(self.token.clone())
    }
}

/// The token lands as the unsigned attribute id-aa-signatureTimeStampToken over the signature
/// value, the PDF side is unchanged, and a failing time-stamp authority fails the seal.
#[test]
fn seal_with_timestamp_adds_the_token_as_an_unsigned_attribute() {
    let key = test_key();
    let input = fixture!("objstm.pdf");
    // Any DER will do for the structure: an OCTET STRING stands in for the token.
    let token = OctetString::new(vec![7u8; 40]).unwrap().to_der().unwrap();
    let ts = FakeTimestamper {
        token: token.clone(),
        seen: Default::default(),
    };
    let output =
        signeur_pdf::seal_with_timestamp(input, &key.signer, &options(), Some(&ts)).unwrap();
    let report = signeur_pdf::verify(&output).unwrap();
    assert!(report.signatures[0].digest_ok, "{report:#?}");
    assert!(report.signatures[0].covers_whole_file, "{report:#?}");
    let tail = &output[input.len()..];
    let at = find_all(tail, b"/Contents<")[0] + b"/Contents<".len();
    let end = at + tail[at..].iter().position(|&b| b == b'>').unwrap();
    let signed = parse_cms(&hex::decode(&tail[at..end]).unwrap());
    let info = &signed.signer_infos.0.as_slice()[0];
    let unsigned = info.unsigned_attrs.as_ref().expect("unsigned attributes");
    let attr = unsigned.iter().next().unwrap();
    assert_eq!(attr.oid, signeur_pdf::ID_AA_SIGNATURE_TIME_STAMP_TOKEN);
    assert_eq!(attr.values.get(0).unwrap().to_der().unwrap(), token);
    assert_eq!(
        ts.seen.borrow().as_slice(),
        [info.signature.as_bytes().to_vec()]
    );

    let failing = FakeTimestamper {
        token: Vec::new(),
        seen: Default::default(),
    };
    let err = signeur_pdf::seal_with_timestamp(input, &key.signer, &options(), Some(&failing))
        .unwrap_err();
    assert!(matches!(err, SealError::Signer(_)), "{err:?}");
}
