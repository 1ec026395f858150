//! `berth-controller rotate-server-cert`: a new server certificate and key
//! from the controller's own CA, for the names of the current certificate
//! (or new ones). Agents and CLI credentials pin the CA, not the server's
//! certificate, so they keep working without a change once the
//! controller is restarted with it; nobody enrolls again.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use berth_proto::CONTROLLER_TLS_NAME;
use berth_shared::ownership::hand_over;
use berth_shared::pki::{Authority, CertInfo, cert_info, first_cert_der};

use crate::init::{server_names, write_server_cert};
use crate::paths::DataDir;

/// What `rotate-server-cert` needs to know.
#[derive(Clone, Debug)]
pub struct RotateOptions {
    pub data_dir: PathBuf,
    /// The name clients use to reach the controller; `None` keeps the
    /// names of the current certificate.
    pub name: Option<String>,
    /// Extra names and addresses (with `name`).
    pub sans: Vec<String>,
}

/// Replaces the server certificate and key in a data directory; returns
/// the new certificate's facts.
pub fn rotate_server_cert(options: &RotateOptions) -> Result<CertInfo> {
    let dir = DataDir::new(&options.data_dir);
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "read {}; is this a data directory made by `berth-controller init`?",
                path.display()
            )
        })
    };
    let authority =
        Authority::load(&read(dir.ca_cert())?, &read(dir.ca_key())?).context("load the CA")?;
    let names = match &options.name {
        Some(name) => server_names(name, &options.sans),
        None if options.sans.is_empty() => current_names(&read(dir.server_cert())?)?,
        None => bail!("--san needs --name: give every name the new certificate should hold"),
    };
    write_server_cert(&dir, &authority, &names)?;
    // Run as root into a directory the package gave to the service user,
    // the new files go to that user, or the service could not read them.
    if let Some(owner) = hand_over(dir.root()).map_err(anyhow::Error::msg)? {
        eprintln!(
            "gave the files in {} to {owner}, the directory's owner",
            dir.root().display()
        );
    }
    let chain = read(dir.server_cert())?;
    let der = first_cert_der(&chain).context("read the new server certificate")?;
    cert_info(&der).context("read the new server certificate")
}

/// The names of the current server certificate, without the fixed one
/// every certificate gets.
fn current_names(chain: &str) -> Result<Vec<String>> {
    let der = first_cert_der(chain).context("read the current server certificate")?;
    let info = cert_info(&der).context("read the current server certificate")?;
    let names: Vec<String> = info
        .names
        .into_iter()
        .filter(|name| name != CONTROLLER_TLS_NAME)
        .collect();
    if names.is_empty() {
        bail!("the current server certificate names no address; give one with --name");
    }
    Ok(names)
}
