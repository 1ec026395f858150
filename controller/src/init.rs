//! `berth-controller init`: creates the CA, the server certificate, the
//! secrets key (`key_file.rs`) and the admin credential bundle in a new
//! data directory.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use berth_proto::CONTROLLER_TLS_NAME;
use berth_shared::credentials::{Bundle, write_file, write_secret};
use berth_shared::ownership::hand_over;
use berth_shared::pki::{Authority, ClientKind, new_ca};

use crate::paths::DataDir;
use crate::store::{Principal, PrincipalKind, Role};

/// What `init` needs to know.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub data_dir: PathBuf,
    /// The name (DNS or IP) clients use to reach the controller.
    pub name: String,
    /// Extra names and addresses for the server certificate.
    pub sans: Vec<String>,
    pub port: u16,
    pub admin_out: Option<PathBuf>,
    /// Where the store is kept (sled in the data directory by default).
    pub store: crate::store_choice::StoreArgs,
}

/// Initializes a data directory; returns where the admin bundle went.
pub async fn init(options: &InitOptions) -> Result<PathBuf> {
    let dir = DataDir::new(&options.data_dir);
    if dir.ca_cert().exists() {
        bail!(
            "{} is already initialized (it holds a CA); use another --data-dir, or start it with `berth-controller serve --data-dir {}`",
            options.data_dir.display(),
            options.data_dir.display()
        );
    }
    std::fs::create_dir_all(dir.root())
        .with_context(|| format!("create {}", dir.root().display()))?;
    set_private(dir.root())?;
    // The store first: a database that cannot be reached or used stops
    // `init` before it writes anything, so running it again works.
    crate::store_choice::record(&dir, &options.store)?;
    let store = match crate::store_choice::open(&dir, &options.store) {
        Ok(store) => store,
        Err(err) => {
            let _ = std::fs::remove_file(dir.store_choice());
            return Err(err);
        }
    };
    let ca = new_ca("berth controller CA").context("create the CA")?;
    write_file(&dir.ca_cert(), ca.cert_pem.as_bytes(), 0o644).map_err(anyhow::Error::msg)?;
    write_secret(&dir.ca_key(), ca.key_pem.as_bytes()).map_err(anyhow::Error::msg)?;
    let authority = Authority::load(&ca.cert_pem, &ca.key_pem).context("load the new CA")?;
    write_server_cert(
        &dir,
        &authority,
        &server_names(&options.name, &options.sans),
    )?;
    crate::key_file::create(&dir).context("make the secrets key")?;

    let (admin_cert, issued) = authority
        .issue_client_with_key(ClientKind::User, "admin")
        .context("issue the admin credential")?;
    let admin = Principal {
        kind: PrincipalKind::User,
        id: "admin".into(),
        name: "admin".into(),
        role: Role::Admin,
        revoked: false,
    };
    store.put_principal(&issued.serial, &admin)?;
    store.adopt_user_principals()?;
    store.audit(
        "controller",
        "init",
        &options.data_dir.display().to_string(),
        "ok",
    )?;
    store.flush().await.context("flush the store")?;

    let bundle = Bundle {
        controller: format!("https://{}", host_port(&options.name, options.port)),
        principal: "admin".into(),
        ca_pem: ca.cert_pem,
        cert_pem: admin_cert.cert_pem,
        key_pem: admin_cert.key_pem,
    };
    let out = options
        .admin_out
        .clone()
        .unwrap_or_else(|| dir.admin_bundle());
    bundle.save(&out).map_err(anyhow::Error::msg)?;
    drop(store);
    // Run as root into a directory the package gave to the service user,
    // every file goes to that user, or the service could not read them.
    if let Some(owner) = hand_over(dir.root()).map_err(anyhow::Error::msg)? {
        eprintln!(
            "gave the files in {} to {owner}, the directory's owner",
            dir.root().display()
        );
    }
    Ok(out)
}

/// The names a server certificate is issued for: `name` (how clients
/// reach the controller), the loopback names and `sans`.
pub fn server_names(name: &str, sans: &[String]) -> Vec<String> {
    let mut names = vec![
        name.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    names.extend(sans.iter().cloned());
    names.sort();
    names.dedup();
    names
}

/// Issues a server certificate for `names` (plus the fixed name agents
/// check) from `authority`, and writes it with its new key into `dir`.
pub fn write_server_cert(dir: &DataDir, authority: &Authority, names: &[String]) -> Result<()> {
    let server = authority
        .issue_server(names, CONTROLLER_TLS_NAME)
        .context("issue the server certificate")?;
    let chain = format!("{}{}", server.cert_pem, authority.cert_pem());
    write_file(&dir.server_cert(), chain.as_bytes(), 0o644).map_err(anyhow::Error::msg)?;
    write_secret(&dir.server_key(), server.key_pem.as_bytes()).map_err(anyhow::Error::msg)?;
    Ok(())
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn set_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restrict {} to its owner", dir.display()))
}

/// The `serve` command that starts the controller `init` just made, on the
/// port written into the admin credential.
pub fn serve_hint(data_dir: &Path, port: u16) -> String {
    format!(
        "berth-controller serve --data-dir {} --listen 0.0.0.0:{port}",
        data_dir.display()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_serve_hint_listens_on_the_credentials_port() {
        let hint = super::serve_hint(std::path::Path::new("/srv/berth"), 8443);
        assert_eq!(
            hint,
            "berth-controller serve --data-dir /srv/berth --listen 0.0.0.0:8443"
        );
    }
}
