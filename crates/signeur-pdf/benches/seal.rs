//! `cargo bench -p signeur-pdf --bench seal`: sealing (PAdES B-B, no stamp) a 100 KB and a
//! 10 MB PDF in-process — median time and peak extra heap — next to the floor (SHA-256 of the
//! file in memory) and, when Python with pyHanko is installed, pyHanko signing the same files
//! in-process (timed inside Python, start-up excluded). Target for 10 MB: ≤ 3× the floor and
//! extra peak memory ≤ 2× the file size.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lopdf::{Document, Object, Stream, dictionary};
use sha2::{Digest, Sha256};

/// Counts live heap bytes and their peak.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/one-page.pdf");

/// The fixture plus one unreferenced-by-content stream object of `size` incompressible bytes.
fn pdf_of_size(size: usize) -> Vec<u8> {
    let mut doc = Document::load_mem(FIXTURE).expect("fixture");
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let id = doc.add_object(Object::Stream(Stream::new(dictionary! {}, data)));
    if let Ok(catalog) = doc.catalog_mut() {
        catalog.set("SigneurBenchPayload", Object::Reference(id));
    }
    let mut out = Vec::new();
    doc.save_to(&mut out).expect("save");
    out
}

fn identity() -> (Vec<u8>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Signeur bench seal");
    let cert = params.self_signed(&key).expect("cert");
    (cert.der().to_vec(), key.serialize_der())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let (cert, pkcs8) = identity();
    let signer =
        signeur_pdf::RingSigner::ecdsa_p256_from_pkcs8(&pkcs8, vec![cert]).expect("signer");
    let opts = signeur_pdf::SealOptions::new(chrono::Utc::now());
    println!(
        "{:<8} {:>12} {:>12} {:>10} {:>14} {:>12} {:>14}",
        "size", "seal ms", "floor ms", "× floor", "peak extra MB", "× file", "pyHanko ms"
    );
    for (label, size) in [("100 KB", 100 * 1024), ("10 MB", 10 * 1024 * 1024)] {
        let pdf = pdf_of_size(size);
        let runs = if size > 1_000_000 { 7 } else { 31 };
        let floor = median(
            (0..runs)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(Sha256::digest(&pdf));
                    t.elapsed()
                })
                .collect(),
        );
        let mut peak_extra = 0usize;
        let times: Vec<Duration> = (0..runs)
            .map(|_| {
                let base = LIVE.load(Ordering::Relaxed);
                PEAK.store(base, Ordering::Relaxed);
                let t = Instant::now();
                let sealed = signeur_pdf::seal(&pdf, &signer, &opts).expect("seal");
                let took = t.elapsed();
                peak_extra = peak_extra.max(PEAK.load(Ordering::Relaxed).saturating_sub(base));
                drop(std::hint::black_box(sealed));
                took
            })
            .collect();
        let seal = median(times);
        let pyhanko = pyhanko_ms(&pdf);
        println!(
            "{:<8} {:>12.2} {:>12.2} {:>10.1} {:>14.1} {:>12.2} {:>14}",
            label,
            seal.as_secs_f64() * 1e3,
            floor.as_secs_f64() * 1e3,
            seal.as_secs_f64() / floor.as_secs_f64(),
            peak_extra as f64 / 1048576.0,
            peak_extra as f64 / pdf.len() as f64,
            pyhanko.map_or("n/a".to_string(), |ms| format!("{ms:.1}")),
        );
    }
    println!("targets (10 MB): seal ≤ 3× floor; peak extra ≤ 2× file size");
}

/// pyHanko signing `pdf` in-process (median of 5, timed in Python), if available.
fn pyhanko_ms(pdf: &[u8]) -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let pki = dir.path().join("pki");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.ci/pades/make_test_pki.sh"
    );
    let made = std::process::Command::new("bash")
        .arg(script)
        .arg(&pki)
        .output()
        .ok()?;
    if !made.status.success() {
        return None;
    }
    let file = dir.path().join("in.pdf");
    std::fs::write(&file, pdf).ok()?;
    let code = r#"
import io, sys, time, statistics
from pyhanko.sign import signers
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
pki, path = sys.argv[1], sys.argv[2]
signer = signers.SimpleSigner.load(pki + "/leaf.key", pki + "/leaf.crt")
data = open(path, "rb").read()
times = []
for i in range(5):
    t = time.perf_counter()
    w = IncrementalPdfFileWriter(io.BytesIO(data))
    signers.sign_pdf(w, signers.PdfSignatureMetadata(field_name="Sig%d" % i), signer=signer)
    times.append(time.perf_counter() - t)
print(statistics.median(times) * 1000)
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", code])
        .arg(&pki)
        .arg(&file)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}
