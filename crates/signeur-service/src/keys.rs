//! The server's master key: encrypts secrets at rest (stored idempotent responses now;
//! webhook secrets and the generated seal key later) and keys the MACs of opaque tokens
//! such as list cursors. Subkeys are derived per purpose, never the master key itself.

use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the master key must be 32 bytes of standard base64 (got {0})")]
    Malformed(String),
    #[error("reading the master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut k = [0u8; 32];
        rand::rng().fill_bytes(&mut k);
        MasterKey(k)
    }

    pub fn from_base64(s: &str) -> Result<MasterKey, KeyError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| KeyError::Malformed(e.to_string()))?;
        let k: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| KeyError::Malformed(format!("{} bytes", b.len())))?;
        Ok(MasterKey(k))
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    pub fn read_file(path: &Path) -> Result<MasterKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        MasterKey::from_base64(&text)
    }

    /// Reads `path`, or creates it (mode 0600) with a fresh key when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, KeyError> {
        if path.exists() {
            return MasterKey::read_file(path);
        }
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let key = MasterKey::generate();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        use std::io::Write;
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(format!("{}\n", key.to_base64()).as_bytes())
            .map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(key)
    }

    fn subkey(&self, purpose: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"signeur subkey:");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// HMAC-SHA256 of `parts` (length-prefixed, so parts cannot run into each other).
    pub fn mac(&self, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.subkey(purpose))
            .expect("HMAC takes any key length");
        for p in parts {
            mac.update(&(p.len() as u64).to_be_bytes());
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }

    /// XChaCha20-Poly1305; the output is nonce ‖ ciphertext.
    pub fn encrypt(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(&self.subkey(purpose).into());
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let mut out = nonce.to_vec();
        // Encryption into a Vec only fails on absurd lengths (> 256 GiB).
        out.extend(
            cipher
                .encrypt(XNonce::from_slice(&nonce), plaintext)
                .unwrap_or_default(),
        );
        out
    }

    /// None when the data was not encrypted by this key for this purpose.
    pub fn decrypt(&self, purpose: &str, data: &[u8]) -> Option<Vec<u8>> {
        if data.len() < 24 {
            return None;
        }
        let (nonce, ct) = data.split_at(24);
        XChaCha20Poly1305::new(&self.subkey(purpose).into())
            .decrypt(XNonce::from_slice(nonce), ct)
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encryption_round_trips_and_is_bound_to_purpose() {
        let k = MasterKey::generate();
        let ct = k.encrypt("a", b"secret");
        assert_ne!(&ct[24..], b"secret");
        assert_eq!(k.decrypt("a", &ct).as_deref(), Some(&b"secret"[..]));
        assert_eq!(k.decrypt("b", &ct), None);
        assert_eq!(MasterKey::generate().decrypt("a", &ct), None);
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(a.0, b.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert!(matches!(
            MasterKey::from_base64("c2hvcnQ="),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn macs_separate_parts() {
        let k = MasterKey::generate();
        assert_ne!(k.mac("p", &[b"ab", b"c"]), k.mac("p", &[b"a", b"bc"]));
        assert_ne!(k.mac("p", &[b"x"]), k.mac("q", &[b"x"]));
    }
}
