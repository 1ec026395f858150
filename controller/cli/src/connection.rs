//! Reaching the controller: the credential bundle, and the first
//! controller of the `--controller` list that answers ([`Link`]), dialled
//! again after a lost connection ([`Session::redial`]).

use std::path::PathBuf;
use std::time::Duration;

use berth_proto::v1::cli_client::CliClient;
use berth_proto::{CONTROLLER_TLS_NAME, MAX_MESSAGE_BYTES};
use berth_shared::credentials::{Bundle, default_bundle_path};
use berth_shared::exit;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use super::failure::error_chain;
use super::{Args, Failure, Session};

fn load_bundle(args: &Args) -> Result<Bundle, Failure> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let path = args
        .config
        .clone()
        .or_else(|| default_bundle_path(home.as_deref()))
        .ok_or_else(|| no_credentials(None))?;
    if !path.exists() {
        return Err(no_credentials(Some(&path)));
    }
    Bundle::load(&path).map_err(|message| Failure::new(exit::AUTH, message))
}

fn no_credentials(path: Option<&std::path::Path>) -> Failure {
    let looked = path
        .map(|path| format!(" (looked for {})", path.display()))
        .unwrap_or_default();
    Failure::new(
        exit::AUTH,
        format!(
            "no credentials{looked}: copy the admin.conf written by `berth-controller init` to ~/.config/berth/config, or point --config or BERTH_CONFIG at it"
        ),
    )
}

pub(crate) async fn connect(args: &Args) -> Result<Session, Failure> {
    let bundle = load_bundle(args)?;
    let list = args
        .controller
        .clone()
        .unwrap_or_else(|| bundle.controller.clone());
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&bundle.ca_pem))
        .identity(Identity::from_pem(&bundle.cert_pem, &bundle.key_pem))
        .domain_name(CONTROLLER_TLS_NAME);
    let mut link = Link {
        addresses: berth_shared::credentials::controller_addresses(&list)
            .into_iter()
            .map(str::to_string)
            .collect(),
        tls,
        current: 0,
    };
    if link.addresses.is_empty() {
        return Err(Failure::usage(format!(
            "controller address `{list}` is not a URL; write https://HOST:PORT"
        )));
    }
    let client = link.dial().await?;
    Ok(Session {
        client,
        format: args.output,
        controller: list,
        link,
    })
}

/// The controllers a session may use, and which one it uses now.
pub struct Link {
    addresses: Vec<String>,
    tls: ClientTlsConfig,
    current: usize,
}

impl Link {
    /// Connects to the first controller that answers, starting with the
    /// current one (every controller of a store serves the same calls).
    async fn dial(&mut self) -> Result<CliClient<Channel>, Failure> {
        let mut first_failure = None;
        for offset in 0..self.addresses.len() {
            let index = (self.current + offset) % self.addresses.len();
            match self.dial_one(&self.addresses[index]).await {
                Ok(channel) => {
                    self.current = index;
                    return Ok(CliClient::new(channel)
                        .max_decoding_message_size(MAX_MESSAGE_BYTES)
                        .max_encoding_message_size(MAX_MESSAGE_BYTES));
                }
                Err(failure) if failure.code == exit::USAGE => return Err(failure),
                Err(failure) => {
                    first_failure.get_or_insert(failure);
                }
            }
        }
        let failure = first_failure
            .unwrap_or_else(|| Failure::usage("no controller address given".to_string()));
        if self.addresses.len() < 2 {
            return Err(failure);
        }
        Err(Failure::new(
            failure.code,
            format!(
                "none of the {} controllers answers ({}); the first said: {}",
                self.addresses.len(),
                self.addresses.join(", "),
                failure.message
            ),
        ))
    }

    async fn dial_one(&self, address: &str) -> Result<Channel, Failure> {
        let endpoint = Endpoint::from_shared(address.to_string())
            .map_err(|_| {
                Failure::usage(format!(
                    "controller address `{address}` is not a URL; write https://HOST:PORT"
                ))
            })?
            .tls_config(self.tls.clone())
            .map_err(|err| {
                Failure::new(
                    exit::AUTH,
                    format!("the credential bundle's certificates are unusable: {err}"),
                )
            })?
            .connect_timeout(Duration::from_secs(10))
            .http2_keep_alive_interval(Duration::from_secs(15))
            .keep_alive_timeout(Duration::from_secs(10));
        endpoint.connect().await.map_err(|err| {
            let chain = error_chain(&err);
            if chain.contains("invalid peer certificate") {
                Failure::new(
                    exit::AUTH,
                    format!("the controller at {address} is not the one your credential bundle trusts ({chain}); use the bundle made by that controller"),
                )
            } else {
                Failure::new(exit::FAILED, format!("cannot reach the controller at {address}: {chain}; is it running, and is the address right?"))
            }
        })
    }
}

impl Session {
    /// Connects again after the connection broke: to the same controller
    /// when it answers, else to the next of the list that does.
    pub async fn redial(&mut self) -> Result<(), Failure> {
        self.client = self.link.dial().await?;
        Ok(())
    }
}
