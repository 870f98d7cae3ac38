//! Signature verification ([`signeur_pdf::verify`]) of files sealed by [`signeur_pdf::seal`],
//! of the pyHanko-signed fixtures, of tampered files and of garbage.

use chrono::{TimeZone, Utc};
use cms::content_info::ContentInfo;
use cms::signed_data::SignedData;
use der::{Decode, Reader, SliceReader};
use signeur_pdf::{RingSigner, SealOptions, VerifyError, VerifyReport, seal, verify};

#[macro_use]
mod common;
use common::{test_key, test_key_rsa};

fn ecdsa_signer() -> (RingSigner, Vec<u8>) {
    let k = test_key();
    (k.signer, k.cert_der)
}

fn rsa_signer() -> (RingSigner, Vec<u8>) {
    let k = test_key_rsa();
    (k.signer, k.cert_der)
}

fn options() -> SealOptions {
    SealOptions::new(Utc.with_ymd_and_hms(2026, 3, 14, 15, 9, 26).unwrap())
}

fn sealed(input: &[u8]) -> Vec<u8> {
    seal(input, &ecdsa_signer().0, &options()).unwrap()
}

/// Checks everything about a fresh seal of ours, the last signature of `report`.
fn assert_our_seal(report: &VerifyReport, file: &[u8]) {
    let ours = report.signatures.last().expect("a signature");
    assert_eq!(ours.sub_filter, "/ETSI.CAdES.detached");
    assert_eq!(ours.signing_time.as_deref(), Some("D:20260314150926Z"));
    assert!(ours.field_name.as_deref().unwrap().starts_with("Signature"));
    assert!(ours.covers_whole_file, "{ours:#?}");
    assert_eq!(ours.byte_range[0], 0);
    assert_eq!(ours.byte_range[2] + ours.byte_range[3], file.len());
    assert!(ours.digest_ok, "{ours:#?}");
    assert!(ours.signature_ok, "{ours:#?}");
    assert!(ours.signing_certificate_v2_ok, "{ours:#?}");
    assert!(!ours.has_signing_time_attr);
    assert!(!ours.has_timestamp);
    assert!(ours.self_signed);
    assert!(
        ours.signer_subject.contains("CN=Signeur Test Seal"),
        "{}",
        ours.signer_subject
    );
    assert!(
        ours.signer_subject.contains("O=Signeur tests"),
        "{}",
        ours.signer_subject
    );
    assert!(!ours.signer_serial_hex.is_empty());
    assert!(ours.not_before < ours.not_after, "{ours:#?}");
    assert!(ours.problems.is_empty(), "{:?}", ours.problems);
    assert!(ours.valid());
    assert!(report.prefix_of_last_is_intact);
    assert!(report.seal_valid());
}

fn verify_sealed(input: &[u8]) -> (Vec<u8>, VerifyReport) {
    let out = sealed(input);
    let report = verify(&out).unwrap();
    assert_eq!(report.signatures.len(), 1, "{report:#?}");
    assert_our_seal(&report, &out);
    (out, report)
}

#[test]
fn verifies_our_seal_on_every_sealable_fixture() {
    verify_sealed(fixture!("one-page.pdf"));
    verify_sealed(fixture!("three-pages.pdf"));
    verify_sealed(fixture!("incremental.pdf"));
    verify_sealed(fixture!("objstm.pdf"));
    verify_sealed(fixture!("hybrid-xref.pdf"));
    verify_sealed(fixture!("leading-junk.pdf"));
}

#[test]
fn verifies_an_rsa_seal() {
    let (signer, cert_der) = rsa_signer();
    let out = seal(fixture!("one-page.pdf"), &signer, &options()).unwrap();
    let report = verify(&out).unwrap();
    assert_eq!(report.signatures.len(), 1);
    assert_our_seal(&report, &out);
    let cert = x509_cert::Certificate::from_der(&cert_der).unwrap();
    assert_eq!(
        report.signatures[0].signer_serial_hex,
        hex::encode_upper(cert.tbs_certificate.serial_number.as_bytes())
    );
}

#[test]
fn report_serializes_to_json() {
    let (out, report) = verify_sealed(fixture!("one-page.pdf"));
    let json = serde_json::to_value(&report).unwrap();
    let sig = &json["signatures"][0];
    assert_eq!(sig["sub_filter"], "/ETSI.CAdES.detached");
    assert_eq!(sig["digest_ok"], true);
    assert_eq!(sig["byte_range"][0], 0);
    assert_eq!(
        sig["byte_range"][2].as_u64().unwrap() + sig["byte_range"][3].as_u64().unwrap(),
        out.len() as u64
    );
    assert_eq!(json["prefix_of_last_is_intact"], true);
}

#[test]
fn a_flipped_byte_in_the_signed_range_breaks_the_digest() {
    let mut out = sealed(fixture!("one-page.pdf"));
    // The binary comment on the second line: the file still parses.
    assert_eq!(&out[..9], b"%PDF-1.7\n");
    out[10] ^= 0x01;
    let report = verify(&out).unwrap();
    let sig = &report.signatures[0];
    assert!(!sig.digest_ok);
    assert!(sig.signature_ok, "the signed attributes are untouched");
    assert!(sig.covers_whole_file);
    assert!(!sig.valid());
    assert!(!report.seal_valid());
}

/// The offset in `file` of the hex digit for the last byte of the CMS signature value.
fn signature_value_hex_offset(file: &[u8], byte_range: [usize; 4]) -> usize {
    let gap_start = byte_range[0] + byte_range[1];
    let hex_digits = &file[gap_start + 1..byte_range[2] - 1];
    let contents = hex::decode(hex_digits).unwrap();
    let mut reader = SliceReader::new(&contents).unwrap();
    let ci = <ContentInfo as der::Decode>::decode(&mut reader).unwrap();
    let sd: SignedData = ci.content.decode_as().unwrap();
    let value = sd.signer_infos.0.as_slice()[0]
        .signature
        .as_bytes()
        .to_vec();
    let at = contents
        .windows(value.len())
        .position(|w| w == value.as_slice())
        .unwrap();
    gap_start + 1 + 2 * (at + value.len() - 1)
}

#[test]
fn a_flipped_byte_in_the_signature_value_breaks_the_signature() {
    for (signer, _) in [ecdsa_signer(), rsa_signer()] {
        let mut out = seal(fixture!("one-page.pdf"), &signer, &options()).unwrap();
        let range = verify(&out).unwrap().signatures[0].byte_range;
        let at = signature_value_hex_offset(&out, range);
        out[at] = if out[at] == b'0' { b'1' } else { b'0' };
        let report = verify(&out).unwrap();
        let sig = &report.signatures[0];
        assert!(sig.digest_ok);
        assert!(sig.signing_certificate_v2_ok);
        assert!(!sig.signature_ok, "{sig:#?}");
        assert!(!report.seal_valid());
    }
}

#[test]
fn bytes_appended_after_the_seal_are_not_covered() {
    let out = sealed(fixture!("one-page.pdf"));

    let mut appended = out.clone();
    appended.extend_from_slice(b"\n% appended after the seal\n");
    let report = verify(&appended).unwrap();
    let sig = &report.signatures[0];
    assert!(sig.digest_ok && sig.signature_ok && sig.valid());
    assert!(!sig.covers_whole_file);
    assert!(!report.seal_valid());

    // A real incremental update that changes the catalog.
    let mut inc: lopdf::IncrementalDocument = out.as_slice().try_into().unwrap();
    let root = inc
        .get_prev_documents()
        .trailer
        .get(b"Root")
        .unwrap()
        .as_reference()
        .unwrap();
    inc.opt_clone_object_to_new_document(root).unwrap();
    inc.new_document
        .get_dictionary_mut(root)
        .unwrap()
        .set("Lang", lopdf::Object::string_literal("fr"));
    let mut updated = Vec::new();
    inc.save_to(&mut updated).unwrap();
    assert!(updated.starts_with(&out));
    let report = verify(&updated).unwrap();
    assert_eq!(report.signatures.len(), 1);
    let sig = &report.signatures[0];
    assert!(sig.digest_ok && sig.signature_ok);
    assert!(!sig.covers_whole_file);
    assert!(!report.seal_valid());
}

#[test]
fn approval_signed_fixture_as_is() {
    let input = fixture!("approval-signed.pdf");
    let report = verify(input).unwrap();
    assert_eq!(report.signatures.len(), 1, "{report:#?}");
    let sig = &report.signatures[0];
    assert_eq!(sig.sub_filter, "/adbe.pkcs7.detached");
    assert!(sig.covers_whole_file);
    assert!(sig.digest_ok && sig.signature_ok, "{sig:#?}");
}

#[test]
fn seal_over_an_approval_signature_keeps_both_valid() {
    let input = fixture!("approval-signed.pdf");
    let out = sealed(input);
    let report = verify(&out).unwrap();
    assert_eq!(report.signatures.len(), 2, "{report:#?}");
    let earlier = &report.signatures[0];
    assert_eq!(earlier.sub_filter, "/adbe.pkcs7.detached");
    assert!(earlier.digest_ok, "{earlier:#?}");
    assert!(earlier.signature_ok, "{earlier:#?}");
    assert!(!earlier.covers_whole_file);
    assert_eq!(earlier.byte_range[2] + earlier.byte_range[3], input.len());
    assert_ne!(earlier.field_name, report.signatures[1].field_name);
    assert_our_seal(&report, &out);

    // pyHanko writes a CMS signing-time: forbidden for ETSI.CAdES.detached only.
    assert!(earlier.has_signing_time_attr);
    assert!(earlier.signing_certificate_v2_ok && earlier.valid());
    let mut as_etsi = earlier.clone();
    as_etsi.sub_filter = "/ETSI.CAdES.detached".into();
    assert!(!as_etsi.valid());
    let mut ours = report.signatures[1].clone();
    assert!(ours.valid());
    ours.has_signing_time_attr = true;
    assert!(!ours.valid());
}

#[test]
fn certified_fixtures_are_reported() {
    for input in [
        fixture!("certified-form-filling.pdf"),
        fixture!("certified-no-changes.pdf"),
    ] {
        let report = verify(input).unwrap();
        assert_eq!(report.signatures.len(), 1, "{report:#?}");
        let sig = &report.signatures[0];
        assert!(
            sig.covers_whole_file && sig.digest_ok && sig.signature_ok,
            "{sig:#?}"
        );
    }
}

#[test]
fn unsigned_fixtures_have_no_signatures() {
    for input in [
        fixture!("one-page.pdf"),
        fixture!("three-pages.pdf"),
        fixture!("incremental.pdf"),
        fixture!("objstm.pdf"),
        fixture!("hybrid-xref.pdf"),
        fixture!("leading-junk.pdf"),
    ] {
        let report = verify(input).unwrap();
        assert!(report.signatures.is_empty());
        assert!(!report.prefix_of_last_is_intact);
        assert!(!report.seal_valid());
    }
}

#[test]
fn garbage_is_an_error() {
    assert_eq!(verify(b""), Err(VerifyError::NotAPdf));
    assert_eq!(verify(b"PK\x03\x04 not a pdf"), Err(VerifyError::NotAPdf));
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(verify(&noise).is_err());
    let mut fake = b"%PDF-1.7\n".to_vec();
    fake.extend_from_slice(&noise);
    assert!(matches!(verify(&fake), Err(VerifyError::Unreadable(_))));
    // Damaged fixtures: an error or a report, never a panic.
    for input in [
        fixture!("truncated.pdf"),
        fixture!("no-eof.pdf"),
        fixture!("broken-xref.pdf"),
        fixture!("encrypted-owner-only.pdf"),
        fixture!("encrypted-rc4-owner-only.pdf"),
        fixture!("encrypted-user-password.pdf"),
    ] {
        if let Ok(report) = verify(input) {
            assert!(!report.seal_valid());
        }
    }
}

/// The message of the error `verify` returns when it caught a panic.
const CAUGHT_PANIC: &str = "malformed in a way the verifier could not handle";

#[test]
fn byte_flips_never_panic_and_never_validate() {
    let out = sealed(fixture!("one-page.pdf"));
    let report = verify(&out).unwrap();
    let range = report.signatures[0].byte_range;
    let gap = range[0] + range[1]..range[2];
    // The zero padding after the CMS is not signed: a flip there may still validate.
    let padding_from = {
        let hex_digits = &out[gap.start + 1..gap.end - 1];
        let contents = hex::decode(hex_digits).unwrap();
        let mut reader = SliceReader::new(&contents).unwrap();
        <ContentInfo as der::Decode>::decode(&mut reader).unwrap();
        gap.start + 1 + 2 * usize::try_from(reader.position()).unwrap()
    };

    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut positions: Vec<usize> = Vec::new();
    for _ in 0..300 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        positions.push((state % out.len() as u64) as usize);
    }
    // And some in the CMS itself, which random positions rarely hit.
    positions.extend((gap.start..padding_from).step_by(37));

    for (i, &at) in positions.iter().enumerate() {
        let mut file = out.clone();
        file[at] ^= 1 << (i % 8);
        match verify(&file) {
            Ok(report) => {
                let in_padding = at >= padding_from && at < gap.end - 1;
                // Upper- to lower-case hex in the CMS: the same bytes.
                let same_hex = gap.contains(&at) && file[at].eq_ignore_ascii_case(&out[at]);
                assert!(
                    in_padding || same_hex || !report.seal_valid(),
                    "flip at {at} still validates"
                );
            }
            Err(err) => assert!(
                !err.to_string().contains(CAUGHT_PANIC),
                "flip at {at} panicked"
            ),
        }
    }
}

/// A one-page file with a signature field (nested under a parent that gives `/FT /Sig`, with
/// a `/Kids` cycle) whose signature dictionary has `byte_range` and `/Contents <AABB>`, and a
/// decoy hex string `<CCDD>` elsewhere.
fn hostile(byte_range: [i64; 4]) -> Vec<u8> {
    use lopdf::{Object, StringFormat, dictionary};
    let mut doc = lopdf::Document::with_version("1.7");
    let pages_id = doc.new_object_id();
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "MediaBox" => vec![0.into(), 0.into(), 10.into(), 10.into()],
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(
            dictionary! { "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1 },
        ),
    );
    let sig_id = doc.add_object(dictionary! {
        "Type" => "Sig",
        "SubFilter" => "ETSI.CAdES.detached",
        "ByteRange" => byte_range.iter().map(|&n| Object::Integer(n)).collect::<Vec<_>>(),
        "Contents" => Object::String(vec![0xaa, 0xbb], StringFormat::Hexadecimal),
    });
    doc.add_object(Object::String(vec![0xcc, 0xdd], StringFormat::Hexadecimal));
    let parent_id = doc.new_object_id();
    let kid_id = doc.add_object(dictionary! {
        "T" => Object::string_literal("kid"), "V" => sig_id, "Parent" => parent_id,
        "Kids" => vec![parent_id.into()],
    });
    doc.objects.insert(
        parent_id,
        Object::Dictionary(dictionary! {
            "FT" => "Sig", "T" => Object::string_literal("parent"), "Kids" => vec![kid_id.into(), kid_id.into()],
        }),
    );
    let acroform = dictionary! { "Fields" => vec![parent_id.into()], "SigFlags" => 3 };
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog", "Pages" => pages_id, "AcroForm" => acroform,
    });
    doc.trailer.set("Root", catalog_id);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

#[test]
fn hostile_byte_ranges_are_reported_not_trusted() {
    const WIDE: i64 = 1_000_000_000; // ten digits, so the patch below keeps every offset
    for range in [
        [0, 1, 2, 3],
        [-1, 5, 10, 3],
        [0, WIDE, WIDE, WIDE],
        [0, i64::MAX, i64::MAX, i64::MAX],
        [5, 1, 2, 3],
    ] {
        let file = hostile(range);
        let report = verify(&file).unwrap();
        assert_eq!(report.signatures.len(), 1, "{report:#?}");
        let sig = &report.signatures[0];
        assert_eq!(sig.field_name.as_deref(), Some("parent.kid"));
        assert!(!sig.digest_ok && !sig.signature_ok && !sig.valid());
        assert!(!sig.problems.is_empty());
        assert!(!report.seal_valid());
    }

    // Signature wrapping: the ranges exclude a hex string that is not the signature's.
    let mut file = hostile([0, WIDE, WIDE, WIDE]);
    let decoy = file.windows(6).position(|w| w == b"<CCDD>").unwrap();
    let placeholder = format!("[0 {WIDE} {WIDE} {WIDE}]");
    let at = file
        .windows(placeholder.len())
        .position(|w| w == placeholder.as_bytes())
        .unwrap();
    let patched = format!(
        "[0 {:010} {:010} {:010}]",
        decoy,
        decoy + 6,
        file.len() - decoy - 6
    );
    file[at..at + placeholder.len()].copy_from_slice(patched.as_bytes());
    let report = verify(&file).unwrap();
    let sig = &report.signatures[0];
    assert!(sig.covers_whole_file);
    assert!(!sig.digest_ok && !sig.valid());
    assert!(
        sig.problems.iter().any(|p| p.contains("not the /Contents")),
        "{:?}",
        sig.problems
    );
    assert!(!report.seal_valid());
}
