//! Where and how the HTTP API listens (`serve --http-listen ADDR`, default
//! [`DEFAULT_HTTP_LISTEN`]; `off` disables it). Plain HTTP only on a
//! loopback address, where nothing but this host can reach it; any other
//! address serves HTTPS with the controller's own server certificate, or
//! the one `--http-cert`/`--http-key` name, and is refused at start when
//! that certificate cannot be used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

use crate::paths::DataDir;

/// The HTTP API's address unless `--http-listen` says otherwise.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:7080";

/// `--http-listen`: an address, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpListen {
    Off,
    On(SocketAddr),
}

impl FromStr for HttpListen {
    type Err = String;

    fn from_str(text: &str) -> Result<HttpListen, String> {
        if text.trim() == "off" {
            return Ok(HttpListen::Off);
        }
        text.trim().parse().map(HttpListen::On).map_err(|_| {
            format!("`{text}` is not an address like 127.0.0.1:7080 (or `off` for no HTTP API)")
        })
    }
}

impl HttpListen {
    /// [`DEFAULT_HTTP_LISTEN`].
    pub fn default_address() -> HttpListen {
        HttpListen::On(SocketAddr::from(([127, 0, 0, 1], 7080)))
    }
}

/// The HTTP API's settings.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    pub listen: HttpListen,
    /// The address is the default, not asked for: when it cannot be bound
    /// (another program has the port), the controller runs without the
    /// API and says so, rather than not starting after an upgrade.
    pub best_effort: bool,
    /// A certificate chain and key (PEM) for HTTPS instead of the
    /// controller's own server certificate.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// How long a web session lasts (`--session-ttl`).
    pub session_ttl: std::time::Duration,
    /// The address people reach the listener by, when it is not the
    /// bound one (a proxy in front): setup links point there.
    pub public_url: Option<String>,
    /// Proxies (Caddy in front) whose `X-Forwarded-For` names the client
    /// (`--trusted-proxy`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for HttpConfig {
    fn default() -> HttpConfig {
        HttpConfig {
            listen: HttpListen::Off,
            best_effort: false,
            cert: None,
            key: None,
            session_ttl: crate::ops::sessions::DEFAULT_SESSION_TTL,
            public_url: None,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A bound listener and how it speaks.
pub struct Bound {
    pub listener: TcpListener,
    pub local: SocketAddr,
    /// `None` for plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// See [`HttpConfig::trusted_proxies`].
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Bound {
    /// The API's base URL (`http://` or `https://` and the bound address).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.local)
    }
}

/// Decides plain HTTP or HTTPS, loads the certificate, and binds; `None`
/// when the API is off.
pub async fn bind(config: &HttpConfig, dir: &DataDir) -> Result<Option<Bound>> {
    let HttpListen::On(address) = config.listen else {
        return Ok(None);
    };
    let tls = match (&config.cert, &config.key) {
        (Some(cert), Some(key)) => Some(tls_config(cert, key, &dir.ca_cert()).with_context(|| {
            format!("use --http-cert {} and --http-key {}", cert.display(), key.display())
        })?),
        (None, None) if address.ip().is_loopback() => None,
        (None, None) => Some(tls_config(&dir.server_cert(), &dir.server_key(), &dir.ca_cert()).with_context(|| {
            format!(
                "--http-listen {address} is not a loopback address, so the HTTP API serves HTTPS, but the controller's server certificate cannot be used; give --http-cert FILE --http-key FILE, renew it with `berth-controller rotate-server-cert`, or listen on 127.0.0.1 for plain HTTP on this host only"
            )
        })?),
        _ => bail!("--http-cert and --http-key go together"),
    };
    let listener = match TcpListener::bind(address).await {
        Ok(listener) => listener,
        Err(err) if config.best_effort => {
            tracing::warn!(
                %address, error = %err,
                "the HTTP API is off: its default address cannot be bound; give --http-listen ADDR (or `off`)"
            );
            return Ok(None);
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context(format!(
                "listen for the HTTP API on {address} (--http-listen; `off` turns it off)"
            )));
        }
    };
    let local = listener
        .local_addr()
        .context("read the HTTP API's bound address")?;
    Ok(Some(Bound {
        listener,
        local,
        tls,
        trusted_proxies: config.trusted_proxies.clone(),
    }))
}

/// HTTPS (HTTP/1.1) with the chain and key in these PEM files; refused
/// when they do not parse, do not match, or the certificate has expired.
/// A client may present a certificate berth's CA (`ca`) issued (a user's
/// CLI bundle); browsers and API-token clients present none.
fn tls_config(cert: &Path, key: &Path, ca: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let read =
        |path: &Path| std::fs::read(path).with_context(|| format!("read {}", path.display()));
    let cert_pem = read(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("read the certificates in {}", cert.display()))?;
    let leaf = chain
        .first()
        .with_context(|| format!("{} holds no certificate", cert.display()))?;
    let info = berth_shared::pki::cert_info(leaf)
        .with_context(|| format!("read the certificate in {}", cert.display()))?;
    if info.not_after_ms <= berth_shared::time::now_ms() {
        bail!(
            "the certificate in {} expired at {}",
            cert.display(),
            berth_shared::time::rfc3339(info.not_after_ms)
        );
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key)?)
        .with_context(|| format!("read the private key in {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_pem = String::from_utf8_lossy(&read(ca)?).into_owned();
    let clients = crate::listener::client_verifier(&ca_pem, &provider)
        .with_context(|| format!("the CA certificate {}", ca.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("choose TLS versions")?
        .with_client_cert_verifier(clients)
        .with_single_cert(chain, key)
        .context("use the certificate with the key (do they belong together?)")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_reads_an_address_or_off() {
        assert_eq!("off".parse(), Ok(HttpListen::Off));
        assert_eq!(
            DEFAULT_HTTP_LISTEN.parse(),
            Ok(HttpListen::On("127.0.0.1:7080".parse().expect("address")))
        );
        assert!("7080".parse::<HttpListen>().is_err());
    }

    #[tokio::test]
    async fn a_taken_default_port_leaves_the_api_off_but_an_asked_for_one_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path());
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = taken.local_addr().expect("address");
        let mut config = HttpConfig {
            listen: HttpListen::On(address),
            best_effort: true,
            ..HttpConfig::default()
        };
        let bound = bind(&config, &data).await.expect("the controller starts");
        assert!(bound.is_none(), "the API is off");
        config.best_effort = false;
        let Err(err) = bind(&config, &data).await else {
            panic!("an address asked for must be bound");
        };
        assert!(format!("{err:#}").contains("--http-listen"), "{err:#}");
        assert_eq!(
            HttpListen::default_address(),
            DEFAULT_HTTP_LISTEN.parse().expect("default")
        );
    }

    #[tokio::test]
    async fn loopback_is_plain_and_elsewhere_needs_a_usable_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = DataDir::new(dir.path());
        let on = |address: &str| HttpConfig {
            listen: HttpListen::On(address.parse().expect("address")),
            ..HttpConfig::default()
        };
        let plain = bind(&on("127.0.0.1:0"), &data).await.expect("bound");
        let plain = plain.expect("on");
        assert!(plain.tls.is_none() && plain.url().starts_with("http://127.0.0.1:"));
        assert!(
            bind(&HttpConfig::default(), &data)
                .await
                .expect("off")
                .is_none()
        );
        let refused = bind(&on("0.0.0.0:0"), &data)
            .await
            .err()
            .expect("no certificate");
        let message = format!("{refused:#}");
        assert!(
            message.contains("--http-cert FILE --http-key FILE")
                && message.contains("pki/server.pem"),
            "{message}"
        );

        let ca = berth_shared::pki::new_ca("test").expect("ca");
        let authority =
            berth_shared::pki::Authority::load(&ca.cert_pem, &ca.key_pem).expect("authority");
        let server = authority
            .issue_server(&["127.0.0.1".into()], "berth-controller")
            .expect("server cert");
        std::fs::create_dir_all(dir.path().join("pki")).expect("pki dir");
        std::fs::write(data.server_cert(), &server.cert_pem).expect("write cert");
        std::fs::write(data.server_key(), &server.key_pem).expect("write key");
        std::fs::write(data.ca_cert(), &ca.cert_pem).expect("write ca");
        let secure = bind(&on("0.0.0.0:0"), &data)
            .await
            .expect("bound")
            .expect("on");
        assert!(secure.tls.is_some() && secure.url().starts_with("https://"));
        // A key that does not belong to the certificate is refused.
        std::fs::write(data.server_key(), &ca.key_pem).expect("write key");
        assert!(bind(&on("0.0.0.0:0"), &data).await.is_err());
    }
}
