//! The server's rustls configuration: its certificate, client certificates
//! checked against berth's CA but optional (a joining agent has none yet),
//! and HTTP/2 by ALPN.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

/// The TLS configuration of the listener from PEM texts.
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("read the server certificate (pki/server.pem)")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .context("read the server key (pki/server.key)")?;
    let verifier = client_verifier(ca_pem, &provider).context("pki/ca.pem")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choose TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("use the server certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Checks client certificates against berth's CA (`ca_pem`), but lets a
/// client without one through (a joining agent on gRPC; a browser or an
/// API-token client on HTTPS), for the caller to refuse per request.
pub fn client_verifier(
    ca_pem: &str,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(ca.context("read the CA certificate")?)
            .context("use the CA certificate for client certificates")?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("build the client certificate verifier")
}
