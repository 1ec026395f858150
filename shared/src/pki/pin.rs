//! CA pins (the SHA-256 of the CA's SubjectPublicKeyInfo, as kubeadm
//! does) and the verifier `berth-agent join` uses before it trusts the
//! controller: the pinned CA must be in the server's chain, and the leaf
//! must verify against it.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::PkiError;

/// The first certificate of a PEM text, as DER.
pub fn first_cert_der(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| PkiError::Parse("no certificate in PEM text".into()))?
        .map_err(|err| PkiError::Parse(err.to_string()))
}

/// The CA pin: lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo.
pub fn spki_pin(der: &[u8]) -> Result<String, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|err| PkiError::Parse(err.to_string()))?;
    Ok(hex::encode(Sha256::digest(cert.public_key().raw)))
}

/// A server-certificate verifier that trusts only a CA whose SPKI hash equals
/// the pin: the CA must be in the presented chain, and the leaf must verify
/// against it for the expected name. It records the CA it found.
#[derive(Debug)]
pub struct PinnedVerifier {
    pin: String,
    found_ca: std::sync::Mutex<Option<CertificateDer<'static>>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl PinnedVerifier {
    pub fn new(pin: &str) -> Arc<PinnedVerifier> {
        Arc::new(PinnedVerifier {
            pin: pin.to_ascii_lowercase(),
            found_ca: std::sync::Mutex::new(None),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// The pinned CA certificate seen in the last successful handshake.
    pub fn found_ca(&self) -> Option<CertificateDer<'static>> {
        self.found_ca.lock().ok().and_then(|found| found.clone())
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|cert| spki_pin(cert).is_ok_and(|pin| pin == self.pin))
            .ok_or_else(|| {
                rustls::Error::General(
                    "the controller's CA does not match the pin in the join token".into(),
                )
            })?;
        let mut roots = RootCertStore::empty();
        roots
            .add(ca.clone().into_owned())
            .map_err(|err| rustls::Error::General(format!("pinned CA is unusable: {err}")))?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|err| rustls::Error::General(err.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)?;
        if let Ok(mut found) = self.found_ca.lock() {
            *found = Some(ca.clone().into_owned());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
