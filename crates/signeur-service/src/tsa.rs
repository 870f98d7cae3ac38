//! RFC 3161 time-stamps from the authorities in `SIGNEUR_TSA_URL`, tried in order. The
//! answer is checked (status, message imprint, nonce) before it is used; when every
//! authority fails the seal fails and its job retries — a time is never made up.

use std::time::Duration;

use rand::RngCore;

use signeur_pdf::{SignerError, Timestamper};

/// Authorities and the per-request timeout.
#[derive(Clone, Debug, Default)]
pub struct TsaSettings {
    /// `http://` or `https://` URLs, tried in order.
    pub urls: Vec<String>,
    pub timeout: Duration,
    /// Extra trust roots (PEM) for HTTPS authorities, besides the system's
    /// (`SIGNEUR_TSA_CA_FILE`: a private authority behind a company CA).
    pub extra_roots_pem: Option<Vec<u8>>,
}

/// Makes ring the process's rustls crypto provider (reqwest is built without one, so that
/// no second crypto library is compiled in). Idempotent; call before building a client.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is all this asks for.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Checks that `pem` holds at least one certificate.
pub fn check_roots(pem: &[u8]) -> Result<(), String> {
    match reqwest::Certificate::from_pem_bundle(pem) {
        Ok(certs) if !certs.is_empty() => Ok(()),
        Ok(_) => Err("no certificate in the file".into()),
        Err(e) => Err(format!("not a PEM certificate bundle: {e}")),
    }
}

/// The HTTP client for authorities: HTTP or HTTPS (system trust roots, plus the extra ones).
pub fn http_client(settings: &TsaSettings) -> Result<reqwest::Client, String> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder();
    if let Some(pem) = &settings.extra_roots_pem {
        for cert in reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("SIGNEUR_TSA_CA_FILE: {e}"))?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| format!("HTTP client: {e}"))
}

/// A [`Timestamper`] that POSTs `application/timestamp-query` to each authority in turn.
/// Runs on a blocking thread (the seal runs there) and drives the async client on `handle`.
pub struct HttpTimestamper {
    pub settings: TsaSettings,
    pub client: reqwest::Client,
    pub handle: tokio::runtime::Handle,
}

impl Timestamper for HttpTimestamper {
    fn timestamp(&self, signature_value: &[u8]) -> Result<Vec<u8>, SignerError> {
        let mut failures = Vec::new();
        for url in &self.settings.urls {
            let mut nonce = [0u8; 8];
            rand::rng().fill_bytes(&mut nonce);
            let result = (|| {
                let request = signeur_pdf::timestamp_request(signature_value, &nonce)
                    .map_err(|e| e.to_string())?;
                let response = self.handle.block_on(async {
                    let res = self
                        .client
                        .post(url)
                        .header("content-type", "application/timestamp-query")
                        .timeout(self.settings.timeout)
                        .body(request)
                        .send()
                        .await
                        .map_err(|e| format!("request failed: {e}"))?;
                    if !res.status().is_success() {
                        return Err(format!("HTTP {}", res.status()));
                    }
                    res.bytes()
                        .await
                        .map(|b| b.to_vec())
                        .map_err(|e| format!("reading the answer: {e}"))
                })?;
                signeur_pdf::timestamp_token(&response, signature_value, &nonce)
                    .map_err(|e| e.to_string())
            })();
            match result {
                Ok(token) => return Ok(token),
                Err(e) => {
                    tracing::warn!(tsa = %url, error = %e, "time-stamp authority failed");
                    failures.push(format!("{url}: {e}"));
                }
            }
        }
        Err(SignerError(format!(
            "no time-stamp authority answered: {}",
            failures.join("; ")
        )))
    }
}
