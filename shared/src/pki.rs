//! PKI helpers: berth's own certificate authority, certificates issued from
//! controller-built parameters, CSRs made with a locally generated key, and
//! CA pins (SHA-256 of the CA's SubjectPublicKeyInfo, as kubeadm does).
//!
//! Invariant: a certificate issued from a CSR takes only the public key from
//! it; every other field is built here (reliability.md §1.2, §2.4).

use std::time::Duration;

use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

mod pin;

pub use pin::{PinnedVerifier, first_cert_der, spki_pin};

/// How long the CA certificate is valid.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long the controller's server certificate is valid.
pub const SERVER_LIFETIME: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
/// How long an agent certificate is valid; agents renew at two thirds.
pub const AGENT_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a user credential is valid.
pub const USER_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// Backdating of `not_before`, to absorb clock skew between hosts.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// A PKI operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate operation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("the certificate could not be parsed: {0}")]
    Parse(String),
    #[error("the certificate signing request is invalid: {0}")]
    BadCsr(String),
}

/// A PEM certificate with its PEM private key.
#[derive(Clone)]
pub struct KeyedCert {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for KeyedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedCert")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let now = OffsetDateTime::now_utc();
    // Short-lived certificates (tests) get a proportionally small backdate.
    params.not_before = now - CLOCK_SKEW.min(lifetime / 10);
    params.not_after = now + lifetime;
}

/// A random 16-byte serial (positive: top bit cleared), returned with its hex.
fn random_serial() -> (SerialNumber, String) {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    (SerialNumber::from_slice(&bytes), hex::encode(bytes))
}

/// Creates a new self-signed CA.
pub fn new_ca(common_name: &str) -> Result<KeyedCert, PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial().0);
    validity(&mut params, CA_LIFETIME);
    let cert = params.self_signed(&key)?;
    Ok(KeyedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A loaded CA that issues certificates.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    agent_lifetime: Duration,
}

/// What kind of client a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    Agent,
    User,
}

/// A freshly issued client certificate.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert_pem: String,
    /// Lowercase hex of the serial number.
    pub serial: String,
    /// Unix milliseconds when it stops being valid.
    pub not_after_ms: i64,
}

impl Authority {
    /// Loads the CA from its PEM certificate and key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Authority, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        Ok(Authority {
            issuer,
            cert_pem: cert_pem.to_string(),
            agent_lifetime: AGENT_LIFETIME,
        })
    }

    /// Sets how long agent certificates are valid (default [`AGENT_LIFETIME`]).
    pub fn with_agent_lifetime(mut self, lifetime: Duration) -> Authority {
        self.agent_lifetime = lifetime;
        self
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues the controller's server certificate for `names` (DNS names or
    /// IP addresses) plus [`crate::pki`]'s fixed controller name.
    pub fn issue_server(&self, names: &[String], fixed_name: &str) -> Result<KeyedCert, PkiError> {
        let key = KeyPair::generate()?;
        let mut all_names = vec![fixed_name.to_string()];
        all_names.extend(
            names
                .iter()
                .filter(|name| name.as_str() != fixed_name)
                .cloned(),
        );
        let mut params = CertificateParams::new(all_names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, fixed_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.serial_number = Some(random_serial().0);
        validity(&mut params, SERVER_LIFETIME);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(KeyedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues a client certificate for the public key in `csr_pem`. Only the
    /// key is taken from the CSR (after its signature is checked); subject,
    /// usages, lifetime and serial come from the controller.
    pub fn issue_client_from_csr(
        &self,
        csr_pem: &str,
        kind: ClientKind,
        principal: &str,
    ) -> Result<Issued, PkiError> {
        if csr_pem.len() > 16 * 1024 {
            return Err(PkiError::BadCsr("larger than 16 KiB".into()));
        }
        let request = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|err| PkiError::BadCsr(err.to_string()))?;
        let (params, serial, not_after_ms) = client_params(kind, principal, self.lifetime(kind))?;
        let built = CertificateSigningRequestParams {
            params,
            public_key: request.public_key,
        };
        let cert = built.signed_by(&self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            serial,
            not_after_ms,
        })
    }

    fn lifetime(&self, kind: ClientKind) -> Duration {
        match kind {
            ClientKind::Agent => self.agent_lifetime,
            ClientKind::User => USER_LIFETIME,
        }
    }

    /// Issues a client certificate with a key made here (used for the admin
    /// credential the controller writes at `init`, on its own host).
    pub fn issue_client_with_key(
        &self,
        kind: ClientKind,
        principal: &str,
    ) -> Result<(KeyedCert, Issued), PkiError> {
        let key = KeyPair::generate()?;
        let (params, serial, not_after_ms) = client_params(kind, principal, self.lifetime(kind))?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let keyed = KeyedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        let issued = Issued {
            cert_pem: keyed.cert_pem.clone(),
            serial,
            not_after_ms,
        };
        Ok((keyed, issued))
    }
}

fn client_params(
    kind: ClientKind,
    principal: &str,
    lifetime: Duration,
) -> Result<(CertificateParams, String, i64), PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let prefix = match kind {
        ClientKind::Agent => "agent",
        ClientKind::User => "user",
    };
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{prefix}:{principal}"));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let (serial, serial_hex) = random_serial();
    params.serial_number = Some(serial);
    validity(&mut params, lifetime);
    let not_after_ms = params.not_after.unix_timestamp() * 1000;
    Ok((params, serial_hex, not_after_ms))
}

/// Makes a new key pair and a CSR for it. The key stays with the caller.
pub fn new_csr(common_name: &str) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let csr = params.serialize_request(&key)?;
    Ok((csr.pem()?, key.serialize_pem()))
}

/// Facts read from a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Lowercase hex of the serial number.
    pub serial: String,
    pub common_name: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    /// The DNS names and IP addresses of its subjectAltName.
    pub names: Vec<String>,
}

/// Reads serial, subject CN, validity and names from a DER certificate.
pub fn cert_info(der: &[u8]) -> Result<CertInfo, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|err| PkiError::Parse(err.to_string()))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let names = cert
        .subject_alternative_name()
        .map_err(|err| PkiError::Parse(err.to_string()))?
        .map(|extension| {
            extension
                .value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::DNSName(dns) => Some(dns.to_string()),
                    GeneralName::IPAddress(bytes) => ip_of(bytes).map(|ip| ip.to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(CertInfo {
        serial: hex::encode(cert.raw_serial()),
        common_name,
        not_before_ms: cert.validity().not_before.timestamp() * 1000,
        not_after_ms: cert.validity().not_after.timestamp() * 1000,
        names,
    })
}

/// An IP address from the 4 or 16 bytes of a subjectAltName entry.
fn ip_of(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
