//! `berth-agent join`: the agent makes its own key, verifies the
//! controller's CA against the pin in the join token *before* sending the
//! token, then exchanges token and CSR for a client certificate.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use berth_proto::v1::JoinAgentRequest;
use berth_proto::v1::enroll_client::EnrollClient;
use berth_proto::{CONTROLLER_TLS_NAME, PROTOCOL_VERSION};
use berth_shared::credentials::{JoinToken, write_file, write_secret};
use berth_shared::labels::Labels;
use berth_shared::pki::{PinnedVerifier, new_csr};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

use crate::config::{Files, Identity};

/// What `join` needs.
#[derive(Clone, Debug)]
pub struct JoinOptions {
    /// `--controller`; `None` joins the controllers the token names.
    pub controller: Option<String>,
    pub token: String,
    pub name: String,
    pub labels: Labels,
}

/// The outcome of a join.
#[derive(Debug, PartialEq, Eq)]
pub enum Joined {
    New(Identity),
    /// The data directory already holds an identity; nothing was changed.
    Already(Identity),
}

/// The controllers' addresses in a `--controller a,b,c` list (one
/// address is a list of one).
pub fn addresses(list: &str) -> Vec<&str> {
    let addresses = berth_shared::credentials::controller_addresses(list);
    if addresses.is_empty() {
        vec![list]
    } else {
        addresses
    }
}

/// `host:port` from `https://host:port`.
pub fn authority(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("https://")
        .with_context(|| format!("controller address `{url}` must start with https://"))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        bail!("controller address `{url}` must look like https://HOST:PORT");
    }
    Ok(
        if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:7443")
        },
    )
}

/// Connects with TLS, accepting the server only if its chain holds the CA
/// whose SPKI hash is `pin`; returns that CA as PEM. No secret is sent.
async fn fetch_pinned_ca(address: &str, pin: &str) -> Result<String> {
    let verifier = PinnedVerifier::new(pin);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(address))
        .await
        .with_context(|| format!("connecting to the controller at {address} timed out"))?
        .with_context(|| format!("cannot reach the controller at {address}"))?;
    let name = ServerName::try_from(CONTROLLER_TLS_NAME).context("controller TLS name")?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let handshake = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .context("the TLS handshake with the controller timed out")?
        .map_err(anyhow::Error::new);
    if let Err(err) = handshake {
        if let Some(hint) = crate::skew::clock_hint(&err) {
            bail!("cannot verify the controller at {address}: {hint}; the token was NOT sent");
        }
        return Err(err.context(format!("the controller at {address} did not prove it holds the CA pinned in the join token; the token was NOT sent (check the address, or make a new token on this controller)")));
    }
    let ca = verifier
        .found_ca()
        .context("the pinned CA was not recorded")?;
    Ok(pem_of(ca.as_ref()))
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

/// Joins the controller and writes the identity into `files`.
pub async fn join(files: &Files, options: &JoinOptions) -> Result<Joined> {
    if files.identity().exists() {
        return Ok(Joined::Already(files.load_identity()?));
    }
    let token = JoinToken::parse(&options.token).map_err(anyhow::Error::msg)?;
    let controller = match &options.controller {
        Some(list) => list.clone(),
        None if !token.controllers.is_empty() => token.controllers.join(","),
        None => bail!(
            "the join token names no controller (a token from the HTTP API or an older berth); give --controller https://HOST:7443"
        ),
    };
    let (url, ca_pem) = first_pinned(&controller, &token.ca_pin).await?;

    std::fs::create_dir_all(files.root())
        .with_context(|| format!("create {}", files.root().display()))?;
    restrict(files.root())?;
    let (csr_pem, key_pem) = new_csr(&options.name).context("make a key and a CSR")?;
    write_secret(&files.key(), key_pem.as_bytes()).map_err(anyhow::Error::msg)?;
    let joined = exchange(files, options, &controller, url, &token, &ca_pem, csr_pem).await;
    if joined.is_err() {
        // A failed join leaves no key behind: the next one makes its own.
        for path in [files.key(), files.cert(), files.ca()] {
            let _ = std::fs::remove_file(path);
        }
    }
    joined
}

/// The first controller of the `--controller` list that answers and
/// proves it holds the pinned CA, with that CA: the token goes to that one.
async fn first_pinned<'a>(list: &'a str, pin: &str) -> Result<(&'a str, String)> {
    let addresses = addresses(list);
    let mut failures = Vec::new();
    for url in &addresses {
        let address = authority(url)?;
        match fetch_pinned_ca(&address, pin).await {
            Ok(ca_pem) => return Ok((url, ca_pem)),
            Err(err) if addresses.len() == 1 => return Err(err),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    bail!("no controller of {list} answered: {}", failures.join("; "))
}

/// Sends token and CSR to the controller at `url`, and writes what it
/// answers (the identity keeps the whole `--controller` list).
async fn exchange(
    files: &Files,
    options: &JoinOptions,
    controller: &str,
    url: &str,
    token: &JoinToken,
    ca_pem: &str,
    csr_pem: String,
) -> Result<Joined> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(CONTROLLER_TLS_NAME);
    let channel = Endpoint::from_shared(url.to_string())
        .context("controller address")?
        .tls_config(tls)
        .context("TLS settings")?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .connect()
        .await
        .with_context(|| format!("connect to {url}"))?;
    let request = JoinAgentRequest {
        token_id: token.id.clone(),
        token_secret: token.secret.clone(),
        csr_pem,
        name: options.name.clone(),
        labels: options.labels.clone().into_iter().collect(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        protocol_version: PROTOCOL_VERSION,
    };
    let response = EnrollClient::new(channel)
        .join_agent(request)
        .await
        .map_err(|status| anyhow::anyhow!("the controller refused the join: {}", status.message()))?
        .into_inner();
    write_file(&files.cert(), response.cert_pem.as_bytes(), 0o644).map_err(anyhow::Error::msg)?;
    write_file(&files.ca(), response.ca_pem.as_bytes(), 0o644).map_err(anyhow::Error::msg)?;
    let identity = Identity {
        controller: controller.to_owned(),
        agent_id: response.agent_id,
        name: response.name,
    };
    let text = toml::to_string(&identity).context("encode agent identity")?;
    write_file(&files.identity(), text.as_bytes(), 0o600).map_err(anyhow::Error::msg)?;
    Ok(Joined::New(identity))
}

fn restrict(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restrict {} to its owner", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_controller_list_is_split_and_one_address_is_a_list_of_one() {
        assert_eq!(
            addresses("https://a:7443, https://b:7443,"),
            vec!["https://a:7443", "https://b:7443"]
        );
        assert_eq!(addresses("https://a:7443"), vec!["https://a:7443"]);
        assert_eq!(addresses(""), vec![""]);
    }

    #[test]
    fn parses_controller_addresses() {
        assert_eq!(
            authority("https://10.0.0.1:7443").expect("ok"),
            "10.0.0.1:7443"
        );
        assert_eq!(
            authority("https://ctl.example.com/").expect("ok"),
            "ctl.example.com:7443"
        );
        assert!(authority("http://x:1").is_err());
        assert!(authority("https://x:1/path").is_err());
    }
}
