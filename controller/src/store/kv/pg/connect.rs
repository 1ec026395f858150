//! Connecting to PostgreSQL: the `--store postgres://...` address, its
//! password from a file or the environment, TLS through rustls (ring),
//! and the schema's migrations, applied once under an advisory lock.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;

use super::super::super::StoreError;
use super::{Pool, blocking, failed, reason};

refinery::embed_migrations!("migrations");

/// The advisory lock every controller takes to migrate the schema, so
/// that two starting at once apply each migration once.
const MIGRATION_LOCK: i64 = 0x6265_7274_685f_6d67; // "berth_mg"

/// How to reach the database.
#[derive(Clone)]
pub struct Settings {
    config: postgres::Config,
    tls: Tls,
    /// The address itself carried the password.
    password_in_url: bool,
}

#[derive(Clone)]
enum Tls {
    Off,
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

impl Settings {
    /// Reads a `postgres://` address. The password comes from the address,
    /// else from `password_file` (whose trailing newline is dropped). TLS
    /// follows the address's `sslmode` (`prefer` when absent); the
    /// server's certificate is checked against the system's roots and
    /// `ca_file`.
    pub fn new(
        url: &str,
        password_file: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> Result<Settings, StoreError> {
        let refused = |reason: String| StoreError::Refused(reason);
        let mut config: postgres::Config = url.parse().map_err(|err| {
            refused(format!(
                "the store address is not a PostgreSQL connection string ({err}); write it as postgres://USER@HOST:PORT/DATABASE"
            ))
        })?;
        let password_in_url = config.get_password().is_some();
        if !password_in_url && let Some(file) = password_file {
            let password = std::fs::read_to_string(file).map_err(|err| {
                refused(format!(
                    "the store's password file {} cannot be read ({err}); give a readable file with --store-password-file",
                    file.display()
                ))
            })?;
            config.password(password.trim_end_matches(['\r', '\n']));
        }
        // Every commit is durable before it returns, whatever the
        // database's default: acknowledgements depend on it.
        let options = match config.get_options() {
            Some(options) => format!("{options} -c synchronous_commit=on"),
            None => "-c synchronous_commit=on".to_owned(),
        };
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("berth-controller");
        }
        config.connect_timeout(std::time::Duration::from_secs(10));
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Disable => Tls::Off,
            _ => Tls::Rustls(tls_connector(ca_file)?),
        };
        Ok(Settings {
            config,
            tls,
            password_in_url,
        })
    }

    /// These settings with the connection's `application_name` set to
    /// `name` (how a session shows in `pg_stat_activity`).
    pub fn named(&self, name: &str) -> Settings {
        let mut named = self.clone();
        named.config.application_name(name);
        named
    }

    /// True when the `postgres://` address itself holds the password.
    pub fn has_password_in_url(&self) -> bool {
        self.password_in_url
    }

    pub(super) fn connect(&self) -> Result<postgres::Client, StoreError> {
        let connected = match &self.tls {
            Tls::Off => self.config.connect(postgres::NoTls),
            Tls::Rustls(tls) => self.config.connect(tls.clone()),
        };
        connected.map_err(|err| {
            StoreError::Database(format!(
                "cannot connect to PostgreSQL at {} ({}); check that it runs and that --store names it",
                self.describe(),
                reason(&err)
            ))
        })
    }

    /// `user@host:port/database`, for messages: never the password.
    pub fn describe(&self) -> String {
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .zip(
                self.config
                    .get_ports()
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(5432)),
            )
            .map(|(host, port)| match host {
                postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            })
            .collect();
        format!(
            "{}@{}/{}",
            self.config.get_user().unwrap_or("?"),
            hosts.join(","),
            self.config.get_dbname().unwrap_or("?")
        )
    }
}

fn tls_connector(
    ca_file: Option<&Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(file) = ca_file {
        let refused = |reason: String| {
            StoreError::Refused(format!(
                "the store's CA file {} is unusable ({reason}); give a PEM file of the PostgreSQL server's CA with --store-ca",
                file.display()
            ))
        };
        let pem = std::fs::read(file).map_err(|err| refused(err.to_string()))?;
        let mut added = 0;
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|err| refused(err.to_string()))?;
            roots.add(cert).map_err(|err| refused(err.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(refused("it holds no certificate".into()));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| StoreError::Database(err.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Connects and brings the schema up to this build's migrations; refuses a
/// database that a newer build has migrated further.
pub fn open(settings: Settings) -> Result<Arc<Pool>, StoreError> {
    let pool = Arc::new(Pool {
        settings,
        idle: Mutex::default(),
        freed: Default::default(),
        schema: Default::default(),
    });
    blocking(|| migrate(&pool))??;
    let schema = blocking(|| -> Result<String, StoreError> {
        let rows = pool
            .get()?
            .query("SELECT current_schema()", &[])
            .map_err(failed)?;
        Ok(rows
            .first()
            .and_then(|row| row.get::<_, Option<String>>(0))
            .unwrap_or_default())
    })??;
    let _ = pool.schema.set(schema);
    Ok(pool)
}

/// Brings a new schema up to migration `version` only, as an older
/// build left it.
#[cfg(test)]
pub(super) fn migrate_to(settings: &Settings, version: i32) {
    let mut client = settings.connect().expect("connect");
    migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run(&mut client)
        .expect("migrate");
    std::thread::spawn(move || drop(client))
        .join()
        .expect("close");
}

fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut conn = pool.get()?;
    let client = &mut conn.client;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed)?;
    let report = migrations::runner()
        .set_abort_missing(true)
        .set_abort_divergent(true)
        .run(client);
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    let report = report.map_err(|err| match err.kind() {
        refinery::error::Kind::MissingVersion(_) | refinery::error::Kind::DivergentVersion(..) => {
            StoreError::Refused(format!(
                "the PostgreSQL store's schema is not this build's ({err}): a newer berth-controller has migrated it; run that version, or restore the database from a backup"
            ))
        }
        refinery::error::Kind::Connection(what, cause) => {
            let cause = match cause.downcast_ref::<postgres::Error>() {
                Some(err) => reason(err),
                None => cause.to_string(),
            };
            StoreError::Database(format!(
                "the schema's migrations failed ({what}: {cause}); check that the user may create tables in the database and schema --store names"
            ))
        }
        _ => StoreError::Database(format!("the schema's migrations failed: {err}")),
    })?;
    unlocked.map_err(failed)?;
    let applied: Vec<String> = report
        .applied_migrations()
        .iter()
        .map(|migration| migration.to_string())
        .collect();
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "brought the PostgreSQL store's schema up to date");
    }
    Ok(())
}
